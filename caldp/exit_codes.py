"""The exit codes of caldp-process: an interface the AWS Batch orchestrator acts on.

The numbers and names are fixed by the contract; never renumber them.  143 is the
conventional status of a process ended by SIGTERM (128 + 15): caldp ends with it
after delivering its logs when it is stopped that way.  29 and 30 are caldp's
additions to the contract's table: an orchestrator that does not know them ends
the job in ``error-`` without a retry, which is right for both.
"""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class ExitCode(IntEnum):
    """Exit status of caldp-process."""

    SUCCESS = 0
    GENERIC_ERROR = 1
    CMDLINE_ERROR = 2
    INPUT_TAR_FILE_ERROR = 21
    ASTROQUERY_ERROR = 22
    STAGE1_ERROR = 23
    STAGE2_ERROR = 24
    S3_UPLOAD_ERROR = 25
    S3_DOWNLOAD_ERROR = 26
    BESTREFS_ERROR = 27
    CREATE_PREVIEWS_ERROR = 28
    WORK_FOLDER_ERROR = 29
    DATASET_BUSY = 30
    SUBPROCESS_MEMORY_ERROR = 31
    CALDP_MEMORY_ERROR = 32
    CONTAINER_MEMORY_ERROR = 33
    OS_MEMORY_ERROR = 34
    SVM_ERROR = 40
    MVM_ERROR = 41
    TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process ended by it

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]

    @property
    def is_memory_error(self) -> bool:
        return self in MEMORY_ERRORS


DESCRIPTIONS: dict[ExitCode, str] = {
    ExitCode.SUCCESS: "the dataset was processed and delivered",
    ExitCode.GENERIC_ERROR: "an error with no specific handling",
    ExitCode.CMDLINE_ERROR: "bad command line (arguments, dataset name, profile)",
    ExitCode.INPUT_TAR_FILE_ERROR: "locating or extracting the input files or tarball",
    ExitCode.ASTROQUERY_ERROR: "downloading astroquery: inputs from MAST",
    ExitCode.STAGE1_ERROR: "stage 1 calibration (the instrument's program, e.g. calacs.e) failed",
    ExitCode.STAGE2_ERROR: "stage 2 (runastrodriz) failed",
    ExitCode.S3_UPLOAD_ERROR: "delivering outputs (S3 upload or output folder)",
    ExitCode.S3_DOWNLOAD_ERROR: "downloading inputs from S3",
    ExitCode.BESTREFS_ERROR: "CRDS bestrefs or a reference file download failed",
    ExitCode.CREATE_PREVIEWS_ERROR: "making previews failed; products were still delivered",
    ExitCode.WORK_FOLDER_ERROR: "the working folder ($CALDP_HOME/caldp-work/<ds>) cannot be "
    "made or written; the logs and the error- message are still delivered",
    ExitCode.DATASET_BUSY: "another run of the dataset holds its working folder or output: "
    "refused, nothing changed",
    ExitCode.SUBPROCESS_MEMORY_ERROR: "a calibration program ran out of memory (MemoryError in its output)",
    ExitCode.CALDP_MEMORY_ERROR: "caldp itself raised MemoryError",
    ExitCode.CONTAINER_MEMORY_ERROR: "reserved: the container runtime killed the job for memory",
    ExitCode.OS_MEMORY_ERROR: 'the OS could not allocate memory (OSError "Cannot allocate memory")',
    ExitCode.SVM_ERROR: "runsinglehap (single-visit mosaic) failed",
    ExitCode.MVM_ERROR: "runmultihap (multi-visit mosaic) failed",
    ExitCode.TERMINATED: "stopped by SIGTERM (an operator cancel or a Batch timeout), not a "
    "calibration failure; logs and error- message delivered",
}

MEMORY_ERRORS = frozenset(
    {
        ExitCode.SUBPROCESS_MEMORY_ERROR,
        ExitCode.CALDP_MEMORY_ERROR,
        ExitCode.CONTAINER_MEMORY_ERROR,
        ExitCode.OS_MEMORY_ERROR,
    }
)


def explain(code: int | str) -> str:
    """One line saying what an exit code (number or name) means."""
    text = str(code).strip()
    try:
        member = ExitCode(int(text)) if text.lstrip("-").isdigit() else ExitCode[text.upper()]
    except (KeyError, ValueError):
        if text.lstrip("-").isdigit() and int(text) > 128:
            return (
                f"{text}: not a caldp code; a shell reports 128+N for a process killed by signal N"
            )
        raise ValueError(f"unknown caldp exit code: {code!r}") from None
    return f"{member.value} {member.name}: {member.description}"


def table() -> str:
    """All exit codes, one per line, for --help."""
    return "\n".join(f"  {c.value:>3}  {c.name:<24} {c.description}" for c in ExitCode)

"""The errors caldp's parts raise, named for what went wrong, never for an exit code.

This module imports nothing of caldp.  Which exit code an error means is decided in
one place, :func:`caldp.sysexit.classify`: the code of the step it happens in,
except that the inputs' own faults (:class:`InputError`) are 21 (22 for MAST,
where downloading again is the remedy) and that memory errors keep their memory
codes wherever they happen.
"""

from __future__ import annotations

import errno


class StepError(Exception):
    """A failure caldp recognises and explains in its message (no traceback needed)."""


class InputError(StepError):
    """The inputs are missing, incomplete or unusable: their fault, not the download's."""


class DownloadError(StepError):
    """Fetching the inputs failed (S3, MAST)."""


class OutputError(StepError):
    """The output location cannot be written, or the delivery failed."""


class ReferencesError(StepError):
    """CRDS could not assign reference files, or a reference could not be fetched."""


class DatasetBusy(StepError):
    """Another run of the dataset holds its working folder or output: refused, untouched."""


class PreviewsError(StepError):
    """Some previews could not be made (the products are delivered anyway)."""


class ProgramFailed(StepError):
    """A calibration program ended with a failing status.

    ``memory_error``: its output showed a Python MemoryError (31); ``enomem``: it
    said "Cannot allocate memory" (34).  Otherwise the failing step's code.
    """

    def __init__(
        self,
        program: str,
        status: str,
        tail: str = "",
        memory_error: bool = False,
        enomem: bool = False,
    ):
        self.program = program
        self.status = status
        self.tail = tail
        self.memory_error = memory_error
        self.enomem = enomem
        said = ": Cannot allocate memory" if enomem and not memory_error else ""
        super().__init__(f"{program} {status}{said}")


class Terminated(BaseException):
    """caldp received SIGTERM (AWS Batch stops jobs this way)."""

    def __init__(self, signame: str = "SIGTERM"):
        self.signame = signame
        self.logged = False
        super().__init__(f"terminated by {signame}")


def is_os_memory_error(exc: BaseException) -> bool:
    """The OS refused memory: ENOMEM, or an OSError saying so."""
    return isinstance(exc, OSError) and (
        exc.errno == errno.ENOMEM or "Cannot allocate memory" in str(exc)
    )


def is_memory_error(exc: BaseException) -> bool:
    """Python or the OS ran out of memory: never a reason to retry or to skip a file."""
    return isinstance(exc, MemoryError) or is_os_memory_error(exc)

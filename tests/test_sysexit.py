import errno

import pytest

from caldp.errors import (
    DownloadError,
    InputError,
    OutputError,
    PreviewsError,
    ProgramFailed,
    ReferencesError,
    Terminated,
)
from caldp.exit_codes import ExitCode
from caldp.sysexit import (
    CaldpError,
    after_failure,
    classify,
    exit_on_exception,
    exit_receiver,
    exit_status,
    simulation,
)


def raise_in(code, exc):
    with pytest.raises(CaldpError) as info:
        with exit_on_exception(code, "step"):
            raise exc
    return info.value.exit_code


def test_any_exception_takes_the_step_code():
    assert raise_in(ExitCode.STAGE2_ERROR, ValueError("x")) == ExitCode.STAGE2_ERROR
    assert raise_in(ExitCode.BESTREFS_ERROR, SystemExit(3)) == ExitCode.BESTREFS_ERROR


def test_sigterm_is_not_the_step_failure():
    """Terminated passes every bracket unchanged and ends the run with 143."""
    with pytest.raises(Terminated):
        with exit_on_exception(ExitCode.S3_UPLOAD_ERROR, "outer"):
            with exit_on_exception(ExitCode.STAGE1_ERROR, "stage 1"):
                raise Terminated()
    assert exit_status(Terminated()) == ExitCode.TERMINATED == 143
    with pytest.raises(SystemExit) as info:
        with exit_receiver():
            with exit_on_exception(ExitCode.STAGE1_ERROR, "stage 1"):
                raise Terminated()
    assert info.value.code == 143


def test_simulated_sigterm_in_stage1():
    with pytest.raises(Terminated):
        with exit_on_exception(ExitCode.STAGE1_ERROR, "stage 1", simulation="143"):
            pass
    with exit_on_exception(ExitCode.BESTREFS_ERROR, "bestrefs", simulation="143"):
        pass


def test_memory_errors_keep_memory_codes_in_any_step():
    assert raise_in(ExitCode.STAGE1_ERROR, MemoryError()) == ExitCode.CALDP_MEMORY_ERROR
    assert raise_in(ExitCode.S3_UPLOAD_ERROR, OSError(errno.ENOMEM, "Cannot allocate memory")) == 34
    assert raise_in(ExitCode.STAGE2_ERROR, ProgramFailed("p", "exited 1", "", True)) == 31
    # a program failure without MemoryError in its output is the step's failure
    assert raise_in(ExitCode.STAGE2_ERROR, ProgramFailed("p", "exited 1", "", False)) == 24


def test_inner_bracket_wins():
    with pytest.raises(CaldpError) as info:
        with exit_on_exception(ExitCode.S3_DOWNLOAD_ERROR, "outer"):
            with exit_on_exception(ExitCode.INPUT_TAR_FILE_ERROR, "inner"):
                raise ValueError("bad tar")
    assert info.value.exit_code == ExitCode.INPUT_TAR_FILE_ERROR


def test_exit_receiver_turns_exceptions_into_status():
    with pytest.raises(SystemExit) as info:
        with exit_receiver():
            raise KeyError("unbracketed")
    assert info.value.code == 1
    with pytest.raises(SystemExit) as info:
        with exit_receiver():
            with exit_on_exception(ExitCode.STAGE1_ERROR, "stage 1"):
                raise RuntimeError
    assert info.value.code == 23
    with pytest.raises(SystemExit) as info:
        with exit_receiver():
            raise MemoryError
    assert info.value.code == 32
    assert exit_status(None) == 0


@pytest.mark.parametrize(
    "simulate, step, expected",
    [
        ("24", ExitCode.STAGE2_ERROR, 24),
        ("31", ExitCode.STAGE1_ERROR, 31),
        ("32", ExitCode.SVM_ERROR, 32),
        ("33", ExitCode.MVM_ERROR, 33),
        ("34", ExitCode.STAGE1_ERROR, 34),
    ],
)
def test_simulated_errors(simulate, step, expected):
    with pytest.raises(CaldpError) as info:
        with exit_on_exception(step, "step", simulation=simulate):
            pass
    assert info.value.exit_code == expected


def test_simulation_only_hits_its_own_step():
    with exit_on_exception(ExitCode.STAGE1_ERROR, "stage 1", simulation="24"):
        pass
    with pytest.raises(CaldpError):
        with exit_on_exception(ExitCode.STAGE2_ERROR, "stage 2", simulation="24"):
            pass


def test_simulation_is_read_from_the_settings_given():
    assert simulation({"CALDP_SIMULATE_ERROR": " 24 "}) == "24"
    assert simulation({}) == ""


# ------------------------------------------------------------------ the one mapping


@pytest.mark.parametrize(
    "error, step, expected",
    [
        # the inputs' own faults: 21 wherever they were fetched from, 22 from MAST
        (InputError("member missing"), ExitCode.INPUT_TAR_FILE_ERROR, 21),
        (InputError("broken tarball"), ExitCode.S3_DOWNLOAD_ERROR, 21),
        (InputError("broken FITS"), ExitCode.ASTROQUERY_ERROR, 22),
        # other typed errors take the code of the step they happen in
        (DownloadError("reset"), ExitCode.S3_DOWNLOAD_ERROR, 26),
        (DownloadError("MAST"), ExitCode.ASTROQUERY_ERROR, 22),
        (OutputError("denied"), ExitCode.S3_UPLOAD_ERROR, 25),
        (ReferencesError("no rules"), ExitCode.BESTREFS_ERROR, 27),
        (PreviewsError("one failed"), ExitCode.CREATE_PREVIEWS_ERROR, 28),
        (ProgramFailed("calwf3.e", "exited 2"), ExitCode.STAGE1_ERROR, 23),
        (ProgramFailed("runsinglehap", "exited 1"), ExitCode.SVM_ERROR, 40),
        (ProgramFailed("calacs.e", "exited 1", enomem=True), ExitCode.STAGE1_ERROR, 34),
        (ProgramFailed("calacs.e", "exited 1", memory_error=True, enomem=True), 23, 31),
    ],
)
def test_classify(error, step, expected):
    assert classify(error, step) == expected
    assert raise_in(step, error) == expected


def test_a_program_out_of_memory_says_so():
    assert "Cannot allocate memory" in str(ProgramFailed("calacs.e", "exited 1", enomem=True))


@pytest.mark.parametrize(
    "result, failure, of_delivery, expected",
    [
        (0, 25, True, 25),  # products not delivered: the run failed
        (28, 25, True, 25),  # previews failed, and the products were not delivered either
        (23, 25, True, 23),  # a failed run's inputs not delivered: still its own failure
        (0, 25, False, 25),  # no final message: not a success
        (28, 25, False, 28),
        (23, 25, False, 23),
    ],
)
def test_a_failed_delivery_or_message_overrides(result, failure, of_delivery, expected):
    code = after_failure(ExitCode(result), ExitCode(failure), of_delivery=of_delivery)
    assert code == expected


def test_backends_pick_no_exit_code():
    """Only the policy (sysexit), the pipeline's step table, the registries and the
    command lines name exit codes; the parts that fetch, deliver or assign raise
    typed errors."""
    from pathlib import Path

    import caldp

    root = Path(caldp.__file__).parent
    for name in (
        "storage/file.py",
        "storage/s3.py",
        "storage/s3_client.py",
        "storage/s3_upload.py",
        "storage/tarball.py",
        "storage/astroquery.py",
        "crds_s3.py",
        "bestrefs.py",
        "inputs.py",
        "headers.py",
    ):
        text = (root / name).read_text()
        assert "ExitCode" not in text and "CaldpError" not in text, name

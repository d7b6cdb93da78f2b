import errno

import pytest

from caldp.exit_codes import ExitCode
from caldp.sysexit import (
    CaldpError,
    ProgramFailed,
    Terminated,
    exit_on_exception,
    exit_receiver,
    exit_status,
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


def test_simulated_sigterm_in_stage1(monkeypatch):
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", "143")
    with pytest.raises(Terminated):
        with exit_on_exception(ExitCode.STAGE1_ERROR, "stage 1"):
            pass
    with exit_on_exception(ExitCode.BESTREFS_ERROR, "bestrefs"):
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
def test_simulated_errors(monkeypatch, simulate, step, expected):
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", simulate)
    with pytest.raises(CaldpError) as info:
        with exit_on_exception(step, "step"):
            pass
    assert info.value.exit_code == expected


def test_simulation_only_hits_its_own_step(monkeypatch):
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", "24")
    with exit_on_exception(ExitCode.STAGE1_ERROR, "stage 1"):
        pass

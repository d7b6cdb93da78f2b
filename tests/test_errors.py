"""caldp.errors: the errors caldp's parts raise, and which of them are memory errors."""

from __future__ import annotations

import ast
import errno
import inspect

import pytest

from caldp import errors
from caldp.errors import (
    DatasetBusy,
    DownloadError,
    InputError,
    OutputError,
    PreviewsError,
    ProgramFailed,
    ReferencesError,
    StepError,
    Terminated,
    is_memory_error,
    is_os_memory_error,
)


@pytest.mark.parametrize(
    "error",
    [InputError, DownloadError, OutputError, ReferencesError, DatasetBusy, PreviewsError],
)
def test_every_step_error_is_explained_by_its_message(error):
    assert issubclass(error, StepError) and issubclass(StepError, Exception)


def test_a_failed_program_says_what_failed_and_how():
    failed = ProgramFailed("calacs.e", "exited with 1", tail="last lines")
    assert str(failed) == "calacs.e exited with 1"
    assert (failed.program, failed.status, failed.tail) == (
        "calacs.e",
        "exited with 1",
        "last lines",
    )
    assert not failed.memory_error and not failed.enomem
    enomem = ProgramFailed("calwf3.e", "exited with 1", enomem=True)
    assert str(enomem) == "calwf3.e exited with 1: Cannot allocate memory"
    both = ProgramFailed("calcos", "exited with 1", memory_error=True, enomem=True)
    assert str(both) == "calcos exited with 1"  # a Python MemoryError says it itself


def test_terminated_is_not_an_exception_a_step_could_swallow():
    term = Terminated()
    assert not isinstance(term, Exception) and isinstance(term, BaseException)
    assert (term.signame, term.logged, str(term)) == ("SIGTERM", False, "terminated by SIGTERM")
    assert str(Terminated("SIGINT")) == "terminated by SIGINT"


def test_os_memory_errors_are_enomem_or_say_so():
    assert is_os_memory_error(OSError(errno.ENOMEM, "x"))
    assert is_os_memory_error(OSError("fork: Cannot allocate memory"))
    assert not is_os_memory_error(MemoryError())  # Python's own, not the OS's
    assert not is_os_memory_error(OSError(errno.ENOSPC, "No space left on device"))


def test_memory_error_check():
    assert is_memory_error(MemoryError())
    assert is_memory_error(OSError(errno.ENOMEM, "x"))
    assert is_memory_error(OSError("Cannot allocate memory"))
    assert not is_memory_error(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_memory_error(ValueError("Cannot allocate memory"))


def test_error_module_imports_nothing_of_caldp():
    tree = ast.parse(inspect.getsource(errors))
    imported = [
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    ]
    assert not [m for m in imported if m and m.startswith("caldp")], imported

"""Bracketing of pipeline steps by exit code (public API; docs/interface.rst, Exit codes).

``exit_on_exception(code, *message)`` wraps one step: any exception inside it
becomes a :class:`CaldpError` carrying the code :func:`classify` gives it (the
one mapping of errors to exit codes), an error already classified by an inner
bracket keeps its code, and :class:`Terminated` (SIGTERM) passes through
unchanged: it ends the run with 143, whatever the step.  ``exit_receiver()``
wraps the whole program and turns the final exception into the exit status.
:func:`after_failure` says how a failed delivery or final message changes a
run's result, and :func:`simulation` is the one reader of
``CALDP_SIMULATE_ERROR`` (from the settings caldp-process read at its start).
"""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from caldp.errors import (
    DatasetBusy,
    InputError,
    ProgramFailed,
    StepError,
    Terminated,
    is_os_memory_error,
)
from caldp.exit_codes import ExitCode

log = logging.getLogger("caldp")

SIMULATE_ENV = "CALDP_SIMULATE_ERROR"
STAGE1_CODES = frozenset({ExitCode.STAGE1_ERROR, ExitCode.SVM_ERROR, ExitCode.MVM_ERROR})


class CaldpError(Exception):
    """An error whose exit code is already known."""

    def __init__(self, exit_code: int, message: str = ""):
        self.exit_code = ExitCode(exit_code)
        self.logged = False
        super().__init__(message or self.exit_code.description)


def classify(exc: BaseException, step_code: int = ExitCode.GENERIC_ERROR) -> ExitCode:
    """The exit code for ``exc`` raised inside a step whose code is ``step_code``."""
    if isinstance(exc, CaldpError):
        return exc.exit_code
    if isinstance(exc, Terminated):
        return ExitCode.TERMINATED
    if isinstance(exc, MemoryError):
        return ExitCode.CALDP_MEMORY_ERROR
    if is_os_memory_error(exc):
        return ExitCode.OS_MEMORY_ERROR
    if isinstance(exc, ProgramFailed) and exc.memory_error:
        return ExitCode.SUBPROCESS_MEMORY_ERROR
    if isinstance(exc, ProgramFailed) and exc.enomem:
        return ExitCode.OS_MEMORY_ERROR
    if isinstance(exc, InputError):
        return input_fault_code(step_code)
    if isinstance(exc, DatasetBusy):
        return ExitCode.DATASET_BUSY
    return ExitCode(step_code)


def input_fault_code(fetch_code: int) -> ExitCode:
    """The code of the inputs' own faults (missing members, broken FITS) for inputs
    fetched by a step with ``fetch_code``: 21, except from MAST, where downloading
    again is the remedy (22)."""
    if fetch_code == ExitCode.ASTROQUERY_ERROR:
        return ExitCode.ASTROQUERY_ERROR
    return ExitCode.INPUT_TAR_FILE_ERROR


# A run's result that a failed delivery overrides: products were to be delivered.
PRODUCTS_DELIVERED = frozenset({ExitCode.SUCCESS, ExitCode.CREATE_PREVIEWS_ERROR})


def after_failure(result: ExitCode, failure: ExitCode, *, of_delivery: bool) -> ExitCode:
    """The run's final status when its delivery (``of_delivery``) or its final message
    fails with ``failure``: a delivery failure overrides a result whose products were
    to be delivered; a message failure overrides only a success."""
    overridden = PRODUCTS_DELIVERED if of_delivery else {ExitCode.SUCCESS}
    return failure if result in overridden else result


def describe(exc: BaseException) -> str:
    """One line for the log: the exception, and where to get a missing library or program."""
    from caldp.extras import missing

    text = str(exc)
    if isinstance(exc, StepError) and text:
        line = text  # says what went wrong in its own words
    else:
        line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    where = missing(exc)
    return f"{line} ({where})" if where else line


def simulation(environ: Mapping[str, str]) -> str:
    """The one place that reads ``CALDP_SIMULATE_ERROR`` (from the run's settings)."""
    return environ.get(SIMULATE_ENV, "").strip()


def simulated_code(value: str) -> ExitCode | None:
    """The exit code the ``CALDP_SIMULATE_ERROR`` value asks for; None when it is empty
    or not a caldp code (such a value is ignored, as the earlier implementation did)."""
    if not value.isdigit() or int(value) not in ExitCode._value2member_map_:
        return None
    return ExitCode(int(value))


def ignored_simulation(value: str) -> str | None:
    """A ``CALDP_SIMULATE_ERROR`` value that is set but is not a caldp code, to warn about."""
    return value if value and simulated_code(value) is None else None


def simulated_error(step_code: int, value: str) -> BaseException | None:
    """The error the ``CALDP_SIMULATE_ERROR`` value asks this step to raise, if any."""
    wanted = simulated_code(value)
    if wanted is None:
        return None
    step = ExitCode(step_code)
    if wanted == step and wanted not in (ExitCode.GENERIC_ERROR, ExitCode.SUCCESS):
        return RuntimeError(f"simulated error {step.value} {step.name} ({SIMULATE_ENV})")
    if step in STAGE1_CODES:
        if wanted == ExitCode.TERMINATED:
            return Terminated(f"SIGTERM (simulated, {SIMULATE_ENV})")
        if wanted == ExitCode.SUBPROCESS_MEMORY_ERROR:
            return ProgramFailed("simulated-program", "exited 1", "MemoryError", memory_error=True)
        if wanted == ExitCode.CALDP_MEMORY_ERROR:
            return MemoryError(f"simulated caldp MemoryError ({SIMULATE_ENV})")
        if wanted == ExitCode.OS_MEMORY_ERROR:
            return OSError(errno.ENOMEM, f"Cannot allocate memory (simulated, {SIMULATE_ENV})")
        if wanted == ExitCode.CONTAINER_MEMORY_ERROR:
            return CaldpError(wanted, f"simulated container memory error ({SIMULATE_ENV})")
    return None


@contextmanager
def exit_on_exception(exit_code: int, *message: object, simulation: str = "") -> Iterator[None]:
    """Map any exception raised in the block to ``exit_code`` (see :func:`classify`).

    ``simulation``: the ``CALDP_SIMULATE_ERROR`` value, which may fail this block
    (none for the brackets that share their code with the step meant to fail).
    """
    simulated = simulated_error(exit_code, simulation)
    try:
        if simulated is not None:
            raise simulated
        yield
    except BaseException as exc:
        if isinstance(exc, CaldpError):
            if not exc.logged:  # raised with its code, not yet reported
                text = " ".join(str(m) for m in message) or exc.exit_code.description
                log.error(
                    "%s: %s -> exit %d %s", text, exc, exc.exit_code.value, exc.exit_code.name
                )
                exc.logged = True
            raise  # classified already
        if isinstance(exc, GeneratorExit):
            raise
        code = classify(exc, exit_code)
        text = " ".join(str(m) for m in message) or ExitCode(exit_code).description
        if isinstance(exc, Terminated):  # not the step's failure: the run is stopped
            if not exc.logged:
                log.error("%s: %s -> exit %d %s", text, exc, code.value, code.name)
                exc.logged = True
            raise
        log.debug("exception in step (%s)", text, exc_info=(type(exc), exc, exc.__traceback__))
        log.error("%s: %s -> exit %d %s", text, describe(exc), code.value, code.name)
        error = CaldpError(code, f"{text}: {describe(exc)}")
        error.logged = True
        raise error from exc


def exit_status(exc: BaseException | None) -> ExitCode:
    """The process exit status for an exception that reached the top level."""
    if exc is None:
        return ExitCode.SUCCESS
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None:
            return ExitCode.SUCCESS
        try:
            return ExitCode(int(code))
        except (TypeError, ValueError):
            return ExitCode.GENERIC_ERROR
    return classify(exc, ExitCode.GENERIC_ERROR)


@contextmanager
def exit_receiver() -> Iterator[None]:
    """Turn any exception escaping the block into ``SystemExit(code)``, logs flushed."""
    try:
        yield
    except BaseException as exc:
        code = exit_status(exc)
        if not isinstance(exc, (CaldpError, SystemExit)):
            log.error("unhandled %s -> exit %d %s", describe(exc), code.value, code.name)
            log.debug("traceback", exc_info=(type(exc), exc, exc.__traceback__))
        flush_logs()
        raise SystemExit(int(code)) from None
    flush_logs()


def flush_logs() -> None:
    for handler in logging.getLogger().handlers + logging.getLogger("caldp").handlers:
        try:
            handler.flush()
        except Exception:  # noqa: BLE001 - flushing must never raise
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass

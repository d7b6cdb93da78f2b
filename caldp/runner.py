"""Run a calibration program as a subprocess.

argv lists only, never a shell; stdout and stderr merged and streamed line by
line into the log as they come; bytes that are not UTF-8 replaced; the last
lines kept for the error message; the return code or the signal reported by
name.  The environment is the process's own plus the extra values given.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("caldp.runner")

TAIL_LINES = 40
TERMINATE_GRACE_SECONDS = 10.0
MEMORY_ERROR_RE = re.compile(r"^\s*(\w+\.)*MemoryError\b|\bMemoryError:|^MemoryError$")
ENOMEM_RE = re.compile(r"Cannot allocate memory|\[Errno 12\]")


@dataclass
class ProgramResult:
    argv: list[str]
    returncode: int
    seconds: float
    tail: list[str]
    memory_error: bool  # a Python MemoryError appeared in the output
    enomem: bool  # "Cannot allocate memory" appeared in the output

    @property
    def program(self) -> str:
        return Path(self.argv[0]).name

    @property
    def signal_name(self) -> str | None:
        if self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return None

    @property
    def status(self) -> str:
        """Human-readable status: 'exited 2' or 'killed by SIGKILL'."""
        name = self.signal_name
        return f"killed by {name}" if name else f"exited {self.returncode}"


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    extra_env: Mapping[str, str] | None = None,
    logger: logging.Logger | None = None,
) -> ProgramResult:
    """Run ``argv`` in ``cwd``, logging its merged output line by line."""
    out = logger or log
    argv = [str(a) for a in argv]
    env = dict(os.environ)
    if extra_env:
        env.update(extra_env)
    out.info("running: %s  (in %s)", " ".join(argv), cwd)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    memory_error = enomem = False
    start = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            out.info("%s: %s", Path(argv[0]).name, line)
            tail.append(line)
            if MEMORY_ERROR_RE.search(line):
                memory_error = True
            if ENOMEM_RE.search(line):
                enomem = True
        returncode = proc.wait()
    except BaseException:
        _stop(proc, out)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    seconds = time.monotonic() - start
    result = ProgramResult(argv, returncode, seconds, list(tail), memory_error, enomem)
    out.info("%s %s after %.2f s", result.program, result.status, seconds)
    return result


def _stop(proc: subprocess.Popen, out: logging.Logger) -> None:
    """Stop a program (and its process group) that caldp no longer waits for."""
    if proc.poll() is not None:
        return
    out.warning("stopping %s (pid %d)", proc.args[0], proc.pid)
    for sig, grace in ((signal.SIGTERM, TERMINATE_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue

"""Run a calibration program as a subprocess.

argv lists only, never a shell; stdout and stderr merged and streamed line by
line into the log as they come; bytes that are not UTF-8 replaced; the last
lines kept for the error message; the return code or the signal reported by
name.  The environment is the process's own plus the extra values given.

Bounded whatever the program does:

* memory: output is read in chunks; a line longer than :data:`LINE_BYTES` is
  cut there (the rest of it is counted, not kept);
* the log: at most :data:`LOG_BYTES` of a program's output is logged; beyond
  that its lines are counted, and a summary with its last lines ends the output;
* processes: the program runs in its own process group.  When it exits, caldp
  stops reading and kills whatever it left running in that group (a leftover
  child holding its stdout would otherwise keep the pipe open for ever); when
  caldp is interrupted it stops the whole group; and when caldp itself dies,
  even by SIGKILL, the kernel kills the program (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import collections
import ctypes
import functools
import logging
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("caldp.runner")

TAIL_LINES = 40
TERMINATE_GRACE_SECONDS = 10.0
READ_BYTES = 1 << 16
LINE_BYTES = 16 << 10  # longer lines are cut: the log gets their first 16 KiB
LOG_BYTES = 64 << 20  # output logged per program run; the rest is summarised
MEMORY_ERROR_RE = re.compile(r"^\s*(\w+\.)*MemoryError\b|\bMemoryError:|^MemoryError$")
ENOMEM_RE = re.compile(r"Cannot allocate memory|\[Errno 12\]")
PR_SET_PDEATHSIG = 1


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


class Lines:
    """Split a byte stream into lines of at most ``limit`` bytes, keeping at most that."""

    def __init__(self, limit: int = LINE_BYTES):
        self.limit = limit
        self.pending = bytearray()
        self.cutting = False  # inside a line already cut: drop bytes up to its newline
        self.cut_bytes = 0  # bytes of cut lines that were dropped

    def feed(self, data: bytes) -> Iterator[bytes]:
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            stop = len(data) if end < 0 else end
            if self.cutting:
                self.cut_bytes += stop - start
            else:
                room = self.limit - len(self.pending)
                self.pending += data[start : min(stop, start + room)]
                if stop - start > room:
                    self.cut_bytes += stop - start - room
                    self.cutting = True
                    yield bytes(self.pending) + CUT_MARK
                    self.pending.clear()
            if end < 0:
                return
            if not self.cutting:
                yield bytes(self.pending)
            self.pending.clear()
            self.cutting = False
            start = end + 1

    def close(self) -> Iterator[bytes]:
        if self.pending:
            yield bytes(self.pending)
        self.pending.clear()


CUT_MARK = f" [line cut at {LINE_BYTES} bytes]".encode()


class Output:
    """A program's output on its way to the log: the log cap, the tail and the memory words."""

    def __init__(self, program: str, logger: logging.Logger):
        self.program = program
        self.out = logger
        self.lines = Lines()
        self.tail: collections.deque[tuple[str, bool]] = collections.deque(maxlen=TAIL_LINES)
        self.logged_bytes = 0
        self.unlogged_lines = 0
        self.unlogged_bytes = 0
        self.memory_error = self.enomem = False

    def feed(self, data: bytes) -> None:
        for raw in self.lines.feed(data):
            self._line(raw)

    def close(self) -> None:
        for raw in self.lines.close():
            self._line(raw)
        parts = []
        if self.lines.cut_bytes:
            parts.append(f"{self.lines.cut_bytes} bytes of lines longer than {LINE_BYTES} bytes")
        if self.unlogged_lines:
            parts.append(
                f"{self.unlogged_lines} lines ({self.unlogged_bytes} bytes) past the cap of "
                f"{LOG_BYTES} bytes per program; its last lines follow"
            )
        if parts:
            self.out.warning("%s: output not logged: %s", self.program, "; ".join(parts))
        for line, logged in self.tail if self.unlogged_lines else ():
            if not logged:
                self.out.info("%s: %s", self.program, line)

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        logged = self.logged_bytes + len(raw) <= LOG_BYTES
        if logged:
            self.logged_bytes += len(raw)
            self.out.info("%s: %s", self.program, line)
        else:
            self.unlogged_lines += 1
            self.unlogged_bytes += len(raw)
        self.tail.append((line, logged))
        if MEMORY_ERROR_RE.search(line):
            self.memory_error = True
        if ENOMEM_RE.search(line):
            self.enomem = True


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    logger: logging.Logger | None = None,
) -> ProgramResult:
    """Run ``argv`` in ``cwd`` with the environment ``env`` (this process's when not
    given), logging its merged output line by line."""
    out = logger or log
    argv = [str(a) for a in argv]
    out.info("running: %s  (in %s)", " ".join(argv), cwd)
    output = Output(Path(argv[0]).name, out)
    start = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent(),  # calls prctl only: no imports, no locks (threads run)
    )
    try:
        returncode = _read_until_exit(proc, output)
    except BaseException:
        _stop(proc, out)
        raise
    finally:
        _kill_leftovers(proc, out)
        if proc.stdout is not None:
            proc.stdout.close()
    output.close()
    seconds = time.monotonic() - start
    tail = [line for line, _ in output.tail]
    result = ProgramResult(argv, returncode, seconds, tail, output.memory_error, output.enomem)
    out.info("%s %s after %.2f s", result.program, result.status, seconds)
    return result


def _read_until_exit(proc: subprocess.Popen, output: Output) -> int:
    """Log the output until the program exits (not until its stdout closes: a leftover
    child may hold it open), then what it had written before exiting."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    try:
        exited: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): look again every second
        exited = None
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        if exited is not None:
            selector.register(exited, selectors.EVENT_READ)
        try:
            while proc.poll() is None:
                for key, _ in selector.select(None if exited is not None else 1.0):
                    if key.fd == fd and not _drain(fd, output):
                        selector.unregister(fd)  # end of output; wait for the exit
        finally:
            if exited is not None:
                os.close(exited)
    _drain(fd, output)
    return proc.wait()


def _drain(fd: int, output: Output) -> bool:
    """Feed what can be read now; False at the end of the output."""
    while True:
        try:
            data = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        output.feed(data)


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec function making the kernel kill the program when caldp dies (Linux)."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    kill, pdeathsig = int(signal.SIGKILL), ctypes.c_ulong(int(signal.SIGKILL))

    def set_pdeathsig() -> None:
        prctl(PR_SET_PDEATHSIG, pdeathsig, 0, 0, 0)
        if os.getppid() != parent:  # caldp died before the call: nobody would kill us
            os.kill(os.getpid(), kill)

    return set_pdeathsig


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, from the symbols already loaded (no library search, no subprocess)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _kill_leftovers(proc: subprocess.Popen, out: logging.Logger) -> None:
    """Kill what the program left running in its process group once it has exited."""
    if proc.poll() is None:
        return
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return
    out.warning("%s exited leaving processes behind: killing its process group", proc.args[0])
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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

"""Logging, configured once: console at INFO, and DEBUG files kept beside the outputs.

A log file loses nothing to a full disk: what cannot be written is kept (the
latest :data:`PENDING_BYTES` of it) and written as soon as there is room again,
say once the working folder's reserve is released for the failure's report.

Every handler redacts secrets: the values of environment variables whose names
say they hold credentials, values registered with :func:`add_secrets` (those of
the dataset's env file), and anything shaped like an AWS access key.
:func:`redact_file` applies the same redaction to a file that is delivered.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path

PROCESS_LOG = "process.txt"  # the run's log, delivered beside the products
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%SZ"
SECRET_NAME_RE = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|PRIVATE|API_KEY")
SECRET_SHAPES = [
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"(?i)(aws_secret_access_key|aws_session_token)(\s*[=:]\s*)\S+"),
]
MIN_SECRET_LENGTH = 6
PENDING_BYTES = 1 << 20  # log text kept in memory while its disk is full
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
REDACTED = "***"


_REGISTERED: set[str] = set()  # secrets that are not in caldp's own environment


def _named_secrets(env: Mapping[str, str]) -> set[str]:
    return {
        v
        for k, v in env.items()
        if SECRET_NAME_RE.search(k.upper()) and len(v) >= MIN_SECRET_LENGTH
    }


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values to redact: those in ``env`` (default ``os.environ``) whose names mark them
    as credentials, and those registered with :func:`add_secrets`; longest first."""
    values = _named_secrets(os.environ if env is None else env) | _REGISTERED
    return sorted(values, key=len, reverse=True)


def add_secrets(env: Mapping[str, str]) -> None:
    """Redact from now on the values of ``env`` whose names mark them as credentials
    (settings caldp passes to the programs without holding them in its own environment)."""
    _REGISTERED.update(_named_secrets(env))


def redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    text = SECRET_SHAPES[0].sub(REDACTED, text)
    return SECRET_SHAPES[1].sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


def redact_file(path: Path) -> bool:
    """Redact a text file in place (a new file renamed over it, so that a hard link to
    the old one keeps its content); returns whether anything was redacted."""
    secrets = secret_values()
    tmp = path.with_name(f".{path.name}.redacted")
    changed = False
    try:
        with (
            open(path, encoding="utf-8", errors="surrogateescape", newline="") as src,
            open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as dst,
        ):
            for line in src:
                clean = redact(line, secrets)
                changed = changed or clean != line
                dst.write(clean)
        if changed:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return changed


class RedactingFormatter(logging.Formatter):
    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__(FORMAT, DATEFMT)
        self._registered = -1
        self.secrets: list[str] = []

    def format(self, record: logging.LogRecord) -> str:
        if self._registered != len(_REGISTERED):  # the env file added some since
            self._registered = len(_REGISTERED)
            self.secrets = secret_values()
        return redact(super().format(record), self.secrets)


def setup_console(level: int = logging.INFO) -> logging.Handler:
    """Send caldp's log to stderr (once per process)."""
    root = logging.getLogger("caldp")
    root.setLevel(logging.DEBUG)
    for h in list(root.handlers):
        if getattr(h, "_caldp_console", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(RedactingFormatter())
    handler._caldp_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    return handler


class FileHandler(logging.Handler):
    """Append each record to a file as it comes (no buffer); records that do not fit
    on a full disk are kept and written, in order, when there is room again."""

    def __init__(self, path: Path, level: int = logging.NOTSET):
        super().__init__(level)
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self.fd: int | None = os.open(path, flags, 0o644)
        self.pending = bytearray()  # formatted text not written yet
        self.lost = 0  # bytes of it dropped (the oldest) past PENDING_BYTES
        self.note = 0  # length of the note saying so, at the start of pending
        self.line_start = True  # the file ends with a whole line

    def emit(self, record: logging.LogRecord) -> None:  # called holding self.lock
        try:
            self._keep((self.format(record) + "\n").encode("utf-8", errors="replace"))
            self._write()
        except Exception:  # noqa: BLE001 - logging's own convention
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self._write()
            finally:
                if self.fd is not None:
                    os.close(self.fd)
                    self.fd = None
        super().close()

    def _keep(self, data: bytes) -> None:
        self.pending += data
        if len(self.pending) <= PENDING_BYTES:
            return
        del self.pending[: self.note]
        excess = len(self.pending) - PENDING_BYTES
        if excess > 0:
            cut = self.pending.find(b"\n", excess - 1) + 1 or len(self.pending)
            del self.pending[:cut]  # the oldest whole lines
            self.lost += cut
        lead = "" if self.line_start else "\n"
        note = f"{lead}[{self.lost} bytes of log lost here: the disk was full]\n".encode()
        self.pending[:0] = note
        self.note = len(note)

    def _write(self) -> None:
        while self.pending and self.fd is not None:
            try:
                written = os.write(self.fd, self.pending)
            except OSError as exc:
                if exc.errno in DISK_FULL:
                    return  # kept for the next record, flush or close
                raise
            self.line_start = self.pending[written - 1 : written] == b"\n"
            del self.pending[:written]
            self.note = max(0, self.note - written)
            if not self.note:
                self.lost = 0


def attach_file(
    path: Path, logger_name: str = "caldp", level: int = logging.DEBUG
) -> logging.Handler:
    """Also log to ``path`` (created or appended to); detach with :func:`detach`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = FileHandler(path)
    handler.setLevel(level)
    handler.setFormatter(RedactingFormatter())
    logger = logging.getLogger(logger_name)
    if logger_name.startswith("caldp"):
        logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return handler


def detach(handler: logging.Handler, logger_name: str = "caldp") -> None:
    logging.getLogger(logger_name).removeHandler(handler)
    handler.flush()
    handler.close()

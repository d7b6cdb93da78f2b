"""Logging, configured once: console at INFO, and DEBUG files kept beside the outputs.

Every handler redacts secrets: the values of environment variables whose names
say they hold credentials, values registered with :func:`add_secrets` (those of
the dataset's env file), and anything shaped like an AWS access key.
:func:`redact_file` applies the same redaction to a file that is delivered.
"""

from __future__ import annotations

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


def attach_file(
    path: Path, logger_name: str = "caldp", level: int = logging.DEBUG
) -> logging.Handler:
    """Also log to ``path`` (created or appended to); detach with :func:`detach`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8", errors="replace")
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

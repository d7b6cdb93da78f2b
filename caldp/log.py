"""Logging, configured once: console at INFO, and DEBUG files kept beside the outputs.

Every handler redacts secrets: the values of environment variables whose names
say they hold credentials, and anything shaped like an AWS access key.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%SZ"
SECRET_NAME_RE = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY|PRIVATE|API_KEY")
SECRET_SHAPES = [
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"(?i)(aws_secret_access_key|aws_session_token)(\s*[=:]\s*)\S+"),
]
MIN_SECRET_LENGTH = 6
REDACTED = "***"


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    values = {
        v
        for k, v in env.items()
        if SECRET_NAME_RE.search(k.upper()) and len(v) >= MIN_SECRET_LENGTH
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    text = SECRET_SHAPES[0].sub(REDACTED, text)
    return SECRET_SHAPES[1].sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


class RedactingFormatter(logging.Formatter):
    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__(FORMAT, DATEFMT)
        self.secrets = secret_values()

    def format(self, record: logging.LogRecord) -> str:
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

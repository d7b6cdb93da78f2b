"""``<ds>_cal_env.txt``: KEY=VALUE lines set in the calibration programs' environment.

Malformed lines are logged and skipped.  Variables that would change which
program runs or how it is loaded (PATH, LD_PRELOAD, PYTHONPATH, ...) and the
reference folders that caldp itself manages are refused.

A file that no program could be started with is refused whole
(:class:`EnvFileError`, exit 21 when the inputs are fetched): a NUL byte, which
no environment variable can hold, or a variable longer than the kernel passes
to a program, or more than :data:`MAX_FILE_BYTES` in all.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from caldp import log as caldp_log
from caldp.bestrefs import REFERENCE_VARIABLES
from caldp.errors import InputError

log = logging.getLogger("caldp.envfile")

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REFUSED_PREFIXES = ("LD_", "DYLD_", "PYTHON", "BASH_FUNC_")
REFUSED_NAMES = frozenset(
    {"PATH", "IFS", "ENV", "BASH_ENV", "SHELL", "HOME", "USER", "TMPDIR", "PERL5LIB", "PERL5OPT"}
    | set(REFERENCE_VARIABLES)
)


# The kernel refuses to start a program with one "KEY=VALUE" string longer than this
# (MAX_ARG_STRLEN, 32 pages, counting the string's terminating NUL)...
MAX_ENTRY_BYTES = 32 * 4096 - 1
# ... or with arguments and environment adding up to more than ARG_MAX (2 MiB with the
# usual 8 MiB stack): an env file may take half of that.
MAX_FILE_BYTES = 2**20


class EnvFileError(InputError):
    """The env file cannot be used at all: no program could be started with it."""


def refused(name: str) -> bool:
    upper = name.upper()
    return upper in {n.upper() for n in REFUSED_NAMES} or upper.startswith(REFUSED_PREFIXES)


def read(path: Path) -> dict[str, str]:
    """The variables ``path`` sets; raise :class:`EnvFileError` if it is unusable."""
    values: dict[str, str] = {}
    size = path.stat().st_size  # before reading: the file may be anything
    if size > MAX_FILE_BYTES:
        raise EnvFileError(
            f"{path.name} is {size} bytes; an env file may hold at most {MAX_FILE_BYTES}"
        )
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, raw in enumerate(text.splitlines(), start=1):
        if "\0" in raw:
            raise EnvFileError(
                f"{path.name} line {number} holds a NUL byte, which no environment "
                "variable can hold"
            )
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not NAME_RE.match(key):
            log.warning("%s line %d is not KEY=VALUE; skipped", path.name, number)
            continue
        if refused(key):
            log.warning(
                "%s line %d sets %s, which caldp does not allow; skipped", path.name, number, key
            )
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        size = len(f"{key}={value}".encode())
        if size > MAX_ENTRY_BYTES:
            raise EnvFileError(
                f"{path.name} line {number} sets {key} to {size} bytes; a program can be "
                f"given at most {MAX_ENTRY_BYTES} per variable"
            )
        values[key] = value
    if values:
        log.info("%s sets %s for the calibration programs", path.name, ", ".join(sorted(values)))
    caldp_log.add_secrets(values)  # a password set here is redacted like one in the environment
    return values

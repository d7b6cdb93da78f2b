"""``<ds>_cal_env.txt``: KEY=VALUE lines set in the calibration programs' environment.

Malformed lines are logged and skipped.  Variables that would change which
program runs or how it is loaded (PATH, LD_PRELOAD, PYTHONPATH, ...) and the
reference folders that caldp itself manages are refused.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from caldp import log as caldp_log
from caldp.bestrefs import REFERENCE_VARIABLES

log = logging.getLogger("caldp.envfile")

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REFUSED_PREFIXES = ("LD_", "DYLD_", "PYTHON", "BASH_FUNC_")
REFUSED_NAMES = frozenset(
    {"PATH", "IFS", "ENV", "BASH_ENV", "SHELL", "HOME", "USER", "TMPDIR", "PERL5LIB", "PERL5OPT"}
    | set(REFERENCE_VARIABLES)
)


def refused(name: str) -> bool:
    upper = name.upper()
    return upper in {n.upper() for n in REFUSED_NAMES} or upper.startswith(REFUSED_PREFIXES)


def read(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, raw in enumerate(text.splitlines(), start=1):
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
        values[key] = value
    if values:
        log.info("%s sets %s for the calibration programs", path.name, ", ".join(sorted(values)))
    caldp_log.add_secrets(values)  # a password set here is redacted like one in the environment
    return values

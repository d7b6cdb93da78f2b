"""Run a command under a memory limit: ``python -m caldp.batch.limit KIND BYTES -- CMD ...``.

KIND is ``as`` (RLIMIT_AS, the address space) or ``data`` (RLIMIT_DATA, heap and
private mappings).  The limit is set in this process, which then becomes the
command (``exec``), so the command and everything it starts inherit it.  The
local pool of ``caldp-batch --local`` starts its workers this way.
"""

from __future__ import annotations

import os
import resource
import sys

LIMITS = {"as": resource.RLIMIT_AS, "data": resource.RLIMIT_DATA}


def set_memory_limit(kind: str, nbytes: int) -> None:
    """Lower the soft and hard ``kind`` limit of this process to ``nbytes``."""
    which = LIMITS[kind]
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY and hard < nbytes:
        nbytes = hard
    resource.setrlimit(which, (nbytes, nbytes))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4 or args[0] not in LIMITS or args[2] != "--" or not args[1].isdigit():
        sys.stderr.write("usage: python -m caldp.batch.limit as|data BYTES -- COMMAND [ARG...]\n")
        return 2
    kind, nbytes, command = args[0], int(args[1]), args[3:]
    set_memory_limit(kind, nbytes)
    try:
        os.execvp(command[0], command)  # noqa: S606 - the caller's command, no shell
    except OSError as exc:
        sys.stderr.write(f"caldp.batch.limit: cannot run {command[0]}: {exc}\n")
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())

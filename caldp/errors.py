"""Error facts that any part of caldp may need, without importing the rest of caldp."""

from __future__ import annotations

import errno


def is_os_memory_error(exc: BaseException) -> bool:
    """The OS refused memory: ENOMEM, or an OSError saying so."""
    return isinstance(exc, OSError) and (
        exc.errno == errno.ENOMEM or "Cannot allocate memory" in str(exc)
    )


def is_memory_error(exc: BaseException) -> bool:
    """Python or the OS ran out of memory: never a reason to retry or to skip a file."""
    return isinstance(exc, MemoryError) or is_os_memory_error(exc)

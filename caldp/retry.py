"""The one retry rule: bounded attempts with jittered exponential backoff.

The wait after the n-th failure is ``first_wait * 2**(n-1)``, capped at
``max_wait``, times a random factor between 0.5 and 1, so that many jobs failing
together (a throttled bucket, a busy MAST) do not all come back at once.
Memory errors are never retried.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from caldp.errors import is_memory_error

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_wait: float = 2.0
    max_wait: float = 60.0

    def wait(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure (1-based)."""
        ceiling = min(self.max_wait, self.first_wait * 2 ** (failures - 1))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security


class GaveUp(Exception):
    """The operation kept failing: ``last`` is its last error, after ``attempts`` tries."""

    def __init__(self, what: str, attempts: int, last: BaseException):
        self.what = what
        self.attempts = attempts
        self.last = last
        super().__init__(f"{what} failed after {attempts} attempt(s): {last}")


def retry(
    what: str,
    func: Callable[[], T],
    policy: RetryPolicy,
    retry_on: tuple[type[BaseException], ...],
    *,
    is_final: Callable[[BaseException], bool] = lambda exc: False,  # noqa: ARG005
    describe: Callable[[BaseException], str] = lambda exc: f"{type(exc).__name__}: {exc}",
    log: logging.Logger | None = None,
) -> T:
    """``func()``, tried again on ``retry_on`` errors that are not final; :class:`GaveUp`
    (from the last error) when the attempts are used up or an error is final.
    Other exceptions, and memory errors, propagate unchanged."""
    log = log or logging.getLogger("caldp.retry")
    attempts = max(1, policy.attempts)
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except retry_on as exc:
            if is_memory_error(exc):
                raise
            if attempt == attempts or is_final(exc):
                raise GaveUp(what, attempt, exc) from exc
            wait = policy.wait(attempt)
            log.warning(
                "%s failed (attempt %d of %d): %s; retrying in %.1f s",
                what,
                attempt,
                attempts,
                describe(exc),
                wait,
            )
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover

"""A function that fails as told before it succeeds, for the tests of retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def flaky(failures: list[BaseException], result: Any = "done") -> Callable[[], Any]:
    """A function raising each of ``failures`` in turn, then returning ``result``;
    ``func.calls`` counts its calls."""
    calls: list[int] = []

    def func():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    func.calls = calls  # type: ignore[attr-defined]
    return func

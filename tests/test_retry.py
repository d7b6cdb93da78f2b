"""The one retry rule: bounded attempts, jittered exponential backoff, no retried memory errors."""

from __future__ import annotations

import errno
import logging

import pytest

from caldp import retry
from caldp.retry import GaveUp, RetryPolicy
from tests.support.retries import flaky


def test_waits_are_jittered_doubling_and_capped():
    policy = RetryPolicy(attempts=9, first_wait=2.0, max_wait=10.0)
    for failures, ceiling in ((1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (8, 10.0)):
        waits = {policy.wait(failures) for _ in range(200)}
        assert all(ceiling * 0.5 <= w <= ceiling for w in waits), (failures, waits)
        assert len(waits) > 1  # jitter: not one fixed value
        assert max(waits) > ceiling * 0.9 and min(waits) < ceiling * 0.6


def test_retries_until_success(sleeps, caplog):
    func = flaky([ConnectionError("reset"), TimeoutError("slow")])
    policy = RetryPolicy(attempts=3, first_wait=1.0)
    with caplog.at_level(logging.WARNING):
        assert retry.retry("the thing", func, policy, (OSError,)) == "done"
    assert len(func.calls) == 3 and len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0
    assert "the thing failed (attempt 1 of 3): ConnectionError: reset" in caplog.text


def test_gives_up_with_the_last_error(sleeps):
    func = flaky([ConnectionError("1"), ConnectionError("2"), ConnectionError("3")])
    with pytest.raises(GaveUp) as err:
        retry.retry("x", func, RetryPolicy(attempts=2, first_wait=0.0), (OSError,))
    assert err.value.attempts == 2 and str(err.value.last) == "2"
    assert len(func.calls) == 2 and len(sleeps) == 1


def test_final_errors_are_not_retried(sleeps):
    func = flaky([PermissionError("denied")])
    with pytest.raises(GaveUp) as err:
        retry.retry(
            "x",
            func,
            RetryPolicy(attempts=5),
            (OSError,),
            is_final=lambda exc: isinstance(exc, PermissionError),
        )
    assert err.value.attempts == 1 and not sleeps


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        OSError(errno.ENOMEM, "Cannot allocate memory"),
        OSError("fork: Cannot allocate memory"),
    ],
)
def test_memory_errors_are_never_retried(sleeps, error):
    func = flaky([error])
    with pytest.raises(type(error)):
        retry.retry("x", func, RetryPolicy(attempts=5), (Exception,))
    assert len(func.calls) == 1 and not sleeps


def test_other_errors_propagate(sleeps):
    with pytest.raises(KeyError):
        retry.retry("x", flaky([KeyError("k")]), RetryPolicy(attempts=5), (OSError,))
    assert not sleeps

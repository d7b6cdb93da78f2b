"""caldp.batch.limit: run a command under a memory limit (the local workers' wrapper)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from caldp.batch import limit

pytestmark = pytest.mark.usefixtures("importable_caldp")

CAPPED = """
import resource, sys
from caldp.batch.limit import set_memory_limit
resource.setrlimit(resource.RLIMIT_DATA, (1 << 40, 1 << 40))
set_memory_limit("data", 1 << 41)  # above the hard limit: capped at it
print(resource.getrlimit(resource.RLIMIT_DATA))
"""


def test_a_limit_above_the_hard_limit_is_the_hard_limit():
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-c", CAPPED], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == f"({1 << 40}, {1 << 40})"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["as", "10", "--"],  # no command
        ["rss", "10", "--", "true"],  # not a limit caldp sets
        ["as", "10k", "--", "true"],  # bytes as digits only
        ["as", "10", "true"],  # no "--"
    ],
)
def test_bad_command_lines_exit_2_with_the_usage(argv, capsys):
    assert limit.main(argv) == 2
    assert capsys.readouterr().err.startswith("usage: python -m caldp.batch.limit as|data BYTES")


def test_limit_wrapper_sets_the_limit_and_becomes_the_command():
    show = "import os, resource; print(resource.getrlimit(resource.RLIMIT_{}), os.getpid())"
    for kind, which in (("as", "AS"), ("data", "DATA")):
        proc = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "caldp.batch.limit", kind, str(3 << 30), "--"]
            + [sys.executable, "-c", show.format(which)],
            capture_output=True,
            text=True,
            check=True,
        )
        limits, _pid = proc.stdout.rsplit(" ", 1)
        assert limits == f"({3 << 30}, {3 << 30})"
    bad = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "caldp.batch.limit", "as", "10", "--", "/nonexistent/program"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 127 and "/nonexistent/program" in bad.stderr
    usage = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "caldp.batch.limit", "rss", "10", "--", "true"],
        capture_output=True,
    )
    assert usage.returncode == 2

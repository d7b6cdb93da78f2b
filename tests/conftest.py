"""Shared fixtures: the real test data, and a real S3 (moto) server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.s3_fixtures import s3_client, use_fast_retries
from tests.support.standins import make_standin_crds_cache

pytest_plugins = [
    "tests.support.pipeline_helpers",
    "tests.support.fault_report",
    "tests.support.batch_fixtures",
    "tests.support.disks",
]

TESTS_DIR = Path(__file__).parent
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing-access-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-access-key-0123456789",
    "AWS_SESSION_TOKEN": "testing-session-token-abcdef",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


TESTDATA_HELP = (
    "the real HST files and offline CRDS cache the tests use; "
    "README.rst, section 'Test data', says where each piece comes from"
)


def testdata_dir() -> Path | None:
    """The real test data folder, or None when it is not available."""
    value = os.environ.get("CALDP_TESTDATA")
    if not value:
        return None
    path = Path(value).resolve()
    return path if path.is_dir() else None


def testdata_missing() -> str:
    """Why the real test data are not available (for a skip)."""
    value = os.environ.get("CALDP_TESTDATA")
    if not value:
        return f"CALDP_TESTDATA is not set ({TESTDATA_HELP})"
    return f"CALDP_TESTDATA={value} is not a folder ({TESTDATA_HELP})"


def require_testdata() -> Path:
    """The real test data folder; skips the calling test, saying why, where it is missing."""
    path = testdata_dir()
    if path is None:
        pytest.skip(testdata_missing())
    return path


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The real HST test data folder; tests that need it skip where it is missing."""
    return require_testdata()


@pytest.fixture(scope="session")
def crds_cache(testdata: Path) -> Path:
    path = testdata / "crds-cache"
    if not path.is_dir():
        pytest.skip(f"{path} is missing: the offline CRDS cache ({TESTDATA_HELP})")
    return path


@pytest.fixture(scope="session")
def standin_crds_cache(crds_cache: Path, tmp_path_factory) -> Path:
    """:func:`tests.support.standins.make_standin_crds_cache` of the real test CRDS cache."""
    return make_standin_crds_cache(crds_cache, tmp_path_factory.mktemp("crds") / "crds_cache")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def moto_command() -> list[str]:
    """How to start moto's own server: its ``moto_server`` script, else the module."""
    server = shutil.which("moto_server")
    return [server] if server else [sys.executable, "-m", "moto.server"]


@contextmanager
def moto_server(
    command: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[str]:
    """A moto server (``command``, without its address) on a free port of 127.0.0.1, its
    output in ``log``: yields its URL once it answers, and stops it afterwards."""
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(  # noqa: S603
            [*command, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> Iterator[str]:
    """URL of a moto server on 127.0.0.1: the one .ci/run started
    (``CALDP_MOTO_ENDPOINT``), else one started for this test session."""
    given = os.environ.get("CALDP_MOTO_ENDPOINT")
    if given:
        _wait_for(given)
        yield given
        return
    with moto_server(moto_command(), tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


def reset_moto(endpoint: str) -> None:
    req = urllib.request.Request(endpoint + "/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch) -> str:
    """Point the standard AWS settings at a freshly reset moto server."""
    reset_moto(moto_endpoint)
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def s3(aws_env: str, monkeypatch):
    """A client on the freshly reset moto server; tiny retry waits for the code under test."""
    use_fast_retries(monkeypatch)
    return s3_client(aws_env)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The waits of caldp.retry, recorded instead of slept."""
    from caldp import retry

    waited: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", waited.append)
    return waited

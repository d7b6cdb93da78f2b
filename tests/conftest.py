"""Shared fixtures: the real test data, and a real S3 (moto) server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest_plugins = ["tests.pipeline_helpers", "tests.fault_report"]

TESTS_DIR = Path(__file__).parent
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing-access-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-access-key-0123456789",
    "AWS_SESSION_TOKEN": "testing-session-token-abcdef",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def testdata_dir() -> Path | None:
    value = os.environ.get("CALDP_TESTDATA")
    if not value:
        return None
    path = Path(value).resolve()
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The real HST test data folder; tests that need it skip where it is not set."""
    path = testdata_dir()
    if path is None:
        pytest.skip("CALDP_TESTDATA is not set (real HST test data and CRDS cache)")
    return path


@pytest.fixture(scope="session")
def crds_cache(testdata: Path) -> Path:
    return testdata / "crds-cache"


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


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> str:
    """URL of a moto server on 127.0.0.1: the one .ci/run started
    (``CALDP_MOTO_ENDPOINT``), else one started for this test session."""
    given = os.environ.get("CALDP_MOTO_ENDPOINT")
    if given:
        _wait_for(given)
        yield given
        return
    port = _free_port()
    logfile = tmp_path_factory.mktemp("moto") / "moto.log"
    server = shutil.which("moto_server")
    argv = [server] if server else [sys.executable, "-m", "moto.server"]
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(  # noqa: S603
            [*argv, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
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

"""Helpers for end-to-end tests of caldp-process on file: inputs and outputs."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from caldp.cli import main
from caldp.headers import VERSION_KEYWORDS
from tests.support.standins import STANDIN_DIR

SERVERLESS = "https://hst-serverless-mode.stsci.edu"


@pytest.fixture
def pipeline_env(tmp_path, monkeypatch, standin_crds_cache):
    """caldp-process with the stand-ins first on PATH, the real CRDS cache (with the
    stand-ins' references), a private home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PATH", f"{STANDIN_DIR}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("CRDS_PATH", str(standin_crds_cache))
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    monkeypatch.setenv("CRDS_SERVER_URL", SERVERLESS)
    monkeypatch.setenv("CRDS_OBSERVATORY", "hst")
    monkeypatch.setenv("CALDP_HOME", str(home))
    monkeypatch.setenv("CALDP_STANDIN_RECORD", str(tmp_path / "record.jsonl"))
    # (the image sets CSYS_VER: the tests start from an environment without it)
    for key in ("CALDP_SIMULATE_ERROR", "CRDS_CONTEXT", "CALDP_KEEP_WORK", *VERSION_KEYWORDS):
        monkeypatch.delenv(key, raising=False)
    for key in list(__import__("os").environ):
        if key.startswith("CALDP_STANDIN_") and key != "CALDP_STANDIN_RECORD":
            monkeypatch.delenv(key)
    return tmp_path


def run(
    dataset: str, inputs: Path | str, outputs: Path | str, profile: str = "caldp-config-local"
) -> int:
    inp = inputs if isinstance(inputs, str) else f"file:{inputs}"
    out = outputs if isinstance(outputs, str) else f"file:{outputs}"
    return main([dataset, inp, out, profile])


def records(tmp_path: Path) -> list[dict]:
    path = tmp_path / "record.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def make_tarball(folder: Path, name: str, files: list[Path]) -> Path:
    path = folder / name
    with tarfile.open(path, "w:gz") as tar:
        for f in files:
            tar.add(f, arcname=f.name)
    return path


def messages(out: Path) -> list[str]:
    folder = out / "messages"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_failed_cleanly(out: Path, dataset: str, instrument: str, code: int) -> str:
    """The error- message is the only state file, the logs are complete, and
    nothing looks like a finished product.  Returns process.txt."""
    assert messages(out) == [f"error-{dataset}"]
    message = (out / "messages" / f"error-{dataset}").read_text().splitlines()
    assert message[0] == f"error-{dataset}"
    base = out / "data" / instrument / dataset
    log_text = (base / "logs" / "process.txt").read_text()
    last = log_text.strip().splitlines()[-1]
    assert f"exit {code} " in last, last
    metrics_lines = (base / "logs" / "process_metrics.txt").read_text().splitlines()
    assert metrics_lines[-1] == f"\tExit status: {code}"
    delivered = [p.name for p in base.iterdir() if p.is_file()]
    assert all(name.endswith("_inputs.tar.gz") for name in delivered), delivered
    assert set(message[1:]) == set(tree(out)) - {f"messages/error-{dataset}"}
    return log_text

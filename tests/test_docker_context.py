"""The files the Dockerfile copies are enough to build and install the package."""

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copied_sources() -> list[str]:
    """Sources of the Dockerfile's COPY lines into the package folder."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        m = re.match(r"COPY\s+(.+)\s+/tmp/caldp-src/\S*$", line.strip())
        if m:
            sources += m.group(1).split()
    return sources


def test_docker_context_builds_a_wheel(tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    sources = copied_sources()
    assert "pyproject.toml" in sources and "caldp" in sources
    ignore = (ROOT / ".dockerignore").read_text()
    for source in sources:
        assert f"!{source}" in ignore, f"{source} is copied but .dockerignore leaves it out"
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, context / source)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",  # shows the build backend's warnings
            "-w",
            str(tmp_path / "dist"),
            ".",
        ],
        cwd=context,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    build_output = result.stdout + result.stderr
    assert "deprecat" not in build_output.lower(), build_output[-3000:]
    wheel = next((tmp_path / "dist").glob("caldp-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "caldp/batch/job_definition.json" in names
    assert "caldp/data/filter_pivots.csv" in names
    assert not any(name.startswith("tests/") for name in names)
    assert any(
        name.endswith(".dist-info/licenses/LICENSE.rst") or name.endswith("/LICENSE.rst")
        for name in names
    ), names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    headers = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: BSD-3-Clause" in headers
    assert "License-File: LICENSE.rst" in headers
    assert "Classifier: License ::" not in headers

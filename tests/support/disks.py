"""Pytest plugin: size-limited and read-only file systems for the disk-full and
unwritable tests (tmpfs mounts, where this machine allows them: root)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


class Mounts:
    """Size-limited or read-only tmpfs mounts, where this machine allows them (root)."""

    _allowed: bool | None = None

    def __init__(self) -> None:
        self.points: list[Path] = []

    @classmethod
    def allowed(cls) -> bool:
        if cls._allowed is None:
            cls._allowed = False
            if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount"):
                probe = Path(tempfile.mkdtemp(prefix="caldp-mount-probe-"))
                if _mount(probe, "4k"):
                    subprocess.run(["umount", str(probe)], check=False, capture_output=True)
                    cls._allowed = True
                probe.rmdir()
        return cls._allowed

    def tmpfs(self, path: Path, size: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        assert _mount(path, size), f"cannot mount a tmpfs on {path}"
        self.points.append(path)

    @staticmethod
    def readonly(path: Path) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)

    def cleanup(self) -> None:
        for path in reversed(self.points):
            subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _mount(path: Path, size: str) -> bool:
    argv = ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)]
    return subprocess.run(argv, check=False, capture_output=True).returncode == 0


def fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` (a real ENOSPC from now on)."""
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


@pytest.fixture
def mounts():
    """A :class:`Mounts`; what it mounted is unmounted after the test."""
    m = Mounts()
    yield m
    m.cleanup()

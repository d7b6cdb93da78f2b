"""A core-only install (``pip install .``): a missing calibration program or optional
library is reported with the extra or image that provides it, keeping its exit code."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from tests.support import synthetic
from tests.support.pipeline_helpers import run


def test_missing_calibration_program_keeps_23_and_names_the_image(
    pipeline_env, tmp_path, monkeypatch
):
    synthetic.make_dataset(tmp_path / "src", "j8cb01u1q")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a core-only install: no hstcal
    assert run("j8cb01u1q", tmp_path / "src", tmp_path / "out") == 23
    log = (tmp_path / "out/data/acs/j8cb01u1q/logs/process.txt").read_text()
    assert "calacs.e is part of hstcal, which is not on PyPI" in log


def test_missing_preview_library_keeps_28_and_names_the_extra(tmp_path):
    """caldp-previews where Pillow is not installed (in a separate interpreter, so that
    no half-imported library is left behind for other tests)."""
    path = tmp_path / "iabc01xyq_flt.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(np.ones((20, 20), np.float32), name="SCI")]
    ).writeto(path)
    code = (
        "import sys; sys.modules['PIL'] = None; "  # as if Pillow were not installed
        "from caldp.previews.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "-o", str(tmp_path / "previews"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 28, result.stderr
    assert "iabc01xyq_flt.fits: no preview: ModuleNotFoundError" in result.stderr
    assert "'previews' extra (pip install 'caldp[previews]')" in result.stderr


@pytest.mark.parametrize("set_by_user", [False, True])
def test_a_missing_crds_cache_is_27_before_the_fetch(tmp_path, monkeypatch, set_by_user):
    """The onsite profile's /grp/crds/cache does not exist off-site: say so, and how to
    go on, before the inputs are fetched."""
    synthetic.make_dataset(tmp_path / "src", "j8cb01u1q")
    monkeypatch.setenv("CALDP_HOME", str(tmp_path / "home"))
    for key in ("CRDS_PATH", "CRDS_READONLY_CACHE", "CRDS_SERVER_URL", "CALDP_SIMULATE_ERROR"):
        monkeypatch.delenv(key, raising=False)
    profile = "caldp-config-onsite"
    if set_by_user:
        monkeypatch.setenv("CRDS_PATH", str(tmp_path / "no-cache"))
        profile = "caldp-config-local"
    assert run("j8cb01u1q", tmp_path / "src", tmp_path / "out", profile) == 27
    log = (tmp_path / "out/data/acs/j8cb01u1q/logs/process.txt").read_text()
    assert "step fetch" not in log  # found before the fetch
    origin = "set in the environment" if set_by_user else "the default of caldp-config-onsite"
    assert re.search(rf"is not a CRDS cache \([^)]*\); CRDS_PATH is {origin}\.", log), log
    assert "off-site use the profile caldp-config-offsite" in log
    assert (tmp_path / "out/messages/error-j8cb01u1q").exists()

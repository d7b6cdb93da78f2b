"""The real hstcal programs, wherever they are on PATH (the Docker image)."""

import re
import shutil

import pytest

from tests.pipeline_helpers import run

pytestmark = pytest.mark.realprograms


def need(program):
    if shutil.which(program) is None or "standins" in (shutil.which(program) or ""):
        pytest.skip(f"the real {program} is not on PATH (it comes with the calibration base image)")


@pytest.mark.parametrize("program", ["calacs.e", "calwf3.e", "cs0.e"])
def test_real_program_answers_version(program):
    import subprocess

    need(program)
    result = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip()


def test_real_calacs_on_real_acs_raw(tmp_path, monkeypatch, testdata, crds_cache):
    need("calacs.e")
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(testdata / "acs" / "j8bt05njq_raw.fits", src)
    monkeypatch.setenv("CRDS_PATH", str(crds_cache))
    monkeypatch.setenv("CALDP_HOME", str(tmp_path))
    # the test cache has no bias or flat files: the real calacs.e must fail cleanly with 23
    assert run("j8bt05njq", src, tmp_path / "out") == 23
    log = (tmp_path / "out/data/acs/j8bt05njq/logs/process.txt").read_text()
    assert "calacs.e exited 2" in log


def test_real_cs0_on_real_stis_acquisition(tmp_path, monkeypatch, testdata, crds_cache):
    need("cs0.e")
    src = tmp_path / "src"
    src.mkdir()
    for suffix in ("raw", "spt"):
        shutil.copy(testdata / "stis" / "acq" / f"o4er06llq_{suffix}.fits", src)
    monkeypatch.setenv("CRDS_PATH", str(crds_cache))
    monkeypatch.setenv("CALDP_HOME", str(tmp_path))
    # the test cache has none of the CCD reference files the acquisition names: the real
    # cs0.e cannot calibrate it here, and its failure is a stage-1 failure, 23
    assert run("o4er06llq", src, tmp_path / "out") == 23
    log = (tmp_path / "out/data/stis/o4er06llq/logs/process.txt").read_text()
    assert re.search(r"cs0\.e exited [1-9]", log), log[-2000:]


def test_real_calwf3_on_a_synthetic_wfc3_raw(tmp_path, monkeypatch, testdata, crds_cache):
    need("calwf3.e")
    from tests.synthetic import make_wfc3_raw

    src = tmp_path / "src"
    make_wfc3_raw(src, "ibqt02a1q")
    monkeypatch.setenv("CRDS_PATH", str(crds_cache))
    monkeypatch.setenv("CALDP_HOME", str(tmp_path))
    # no WFC3 reference files in the test cache: the real calwf3.e fails, 23
    assert run("ibqt02a1q", src, tmp_path / "out") == 23
    log = (tmp_path / "out/data/wfc3/ibqt02a1q/logs/process.txt").read_text()
    assert re.search(r"calwf3\.e exited [1-9]", log), log[-2000:]

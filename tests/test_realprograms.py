"""The real hstcal programs, wherever they are on PATH (the Docker image)."""

import ast
import re
import shutil

import pytest

from tests.support.pipeline_helpers import run

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


SWITCHES = ("DQICORR", "BIASCORR", "BLEVCORR", "DARKCORR", "FLATCORR", "PHOTCORR")


def test_real_calacs_calibrates_real_acs_raw_with_synthetic_references(
    tmp_path, monkeypatch, testdata, crds_cache
):
    need("calacs.e")
    need("runastrodriz")
    from astropy.io import fits
    from crds.bestrefs import assign_bestrefs

    from tests.support.synthetic_references import make_acs_references

    cache = tmp_path / "crds_cache"  # the test cache, plus the references made here
    shutil.copytree(crds_cache, cache)
    for path in [cache, *cache.rglob("*")]:  # the test data is read-only
        path.chmod(path.stat().st_mode | 0o200)
    for name, value in (("CRDS_PATH", cache), ("CRDS_READONLY_CACHE", "1")):
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("CRDS_SERVER_URL", "https://hst-serverless-mode.stsci.edu")
    monkeypatch.setenv("CALDP_HOME", str(tmp_path))
    src = tmp_path / "src"
    src.mkdir()
    raw = src / "j8bt05njq_raw.fits"
    shutil.copy(testdata / "acs" / "j8bt05njq_raw.fits", raw)
    raw.chmod(0o644)
    # the names CRDS assigns, from the cache's operational context
    context = ast.literal_eval((cache / "config/hst/server_config").read_text())
    named = tmp_path / "named" / raw.name
    named.parent.mkdir()
    shutil.copy(raw, named)
    assert assign_bestrefs([str(named)], context=context["operational_context"],
                           sync_references=False) == 0  # fmt: skip
    made = make_acs_references(named, cache / "references" / "hst")
    with fits.open(named) as assigned, fits.open(raw, mode="update") as hdul:
        for key in ("SATUFILE", "PCTECORR"):
            hdul[0].header[key] = assigned[0].header[key]
        # drizzling needs the distortion files and astrometric catalogs, not here:
        # stage 2 (runastrodriz) keeps to its bookkeeping
        hdul[0].header["DRIZCORR"] = "OMIT"
    print(f"{len(made)} synthetic reference files: {', '.join(p.name for p in made)}")

    assert run("j8bt05njq", src, tmp_path / "out") == 0
    base = tmp_path / "out/data/acs/j8bt05njq"
    log = (base / "logs/process.txt").read_text()
    assert "calacs.e" in log and "runastrodriz" in log
    flt = base / "j8bt05njq_flt.fits"
    assert flt.is_file(), sorted(p.name for p in base.iterdir())
    header = fits.getheader(flt)
    assert {k: header[k] for k in SWITCHES} == dict.fromkeys(SWITCHES, "COMPLETE")
    assert fits.getdata(flt, "SCI").shape == (1024, 1024)  # overscan trimmed
    assert (tmp_path / "out/messages/processed-j8bt05njq.trigger").is_file()


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
    from tests.support.synthetic import make_wfc3_raw

    src = tmp_path / "src"
    make_wfc3_raw(src, "ibqt02a1q")
    monkeypatch.setenv("CRDS_PATH", str(crds_cache))
    monkeypatch.setenv("CALDP_HOME", str(tmp_path))
    # no WFC3 reference files in the test cache: the real calwf3.e fails, 23
    assert run("ibqt02a1q", src, tmp_path / "out") == 23
    log = (tmp_path / "out/data/wfc3/ibqt02a1q/logs/process.txt").read_text()
    assert re.search(r"calwf3\.e exited [1-9]", log), log[-2000:]

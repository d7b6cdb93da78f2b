import shutil

import pytest
from astropy.io import fits

from caldp import bestrefs


@pytest.fixture
def crds_env(crds_cache, monkeypatch):
    monkeypatch.setenv("CRDS_PATH", str(crds_cache))
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    monkeypatch.setenv("CRDS_SERVER_URL", "https://hst-serverless-mode.stsci.edu")
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    return crds_cache


def test_reference_dirs_flat_and_instrument(tmp_path, crds_cache):
    flat = bestrefs.reference_dirs(crds_cache)
    assert set(flat) == {"iref", "jref", "oref", "lref", "nref", "uref"}
    assert all(v == f"{crds_cache}/references/hst/" for v in flat.values())
    inst = bestrefs.reference_dirs(tmp_path)  # no marker: instrument layout
    assert inst["jref"] == f"{tmp_path}/references/hst/acs/"
    assert inst["uref"] == f"{tmp_path}/references/hst/wfpc2/"  # not "wfcpc2"
    assert all(v.endswith("/") for v in inst.values())


def test_real_acs_raw_gets_real_references(tmp_path, testdata, crds_env):
    raw = tmp_path / "j8bt05njq_raw.fits"
    shutil.copyfile(testdata / "acs" / "j8bt05njq_raw.fits", raw)
    result = bestrefs.run([raw], crds_env, {}, sync=False)
    assert result.errors == 0 and result.context == "hst_0729.pmap"
    header = fits.getheader(raw)
    assert header["BIASFILE"] == "jref$m4r1753rj_bia.fits"
    assert header["CRDS_CTX"] == "hst_0729.pmap"
    assert result.references["m4r1753rj_bia.fits"] == "jref"
    assert "m4r1753rj_bia.fits" in result.missing  # the test cache holds no bias files


def test_context_choice(crds_cache):
    assert bestrefs.choose_context(crds_cache, {}) == "hst_0729.pmap"
    assert bestrefs.choose_context(crds_cache, {"CRDS_CONTEXT": "hst_0700.pmap"}) == "hst_0700.pmap"
    assert (
        bestrefs.choose_context(crds_cache, {"CRDS_CONTEXT": "x"}, pinned="hst_0729.pmap")
        == "hst_0729.pmap"
    )


def test_crds_errors_are_failures(tmp_path, testdata, crds_env):
    raw = tmp_path / "j8bt05njq_raw.fits"
    shutil.copyfile(testdata / "acs" / "j8bt05njq_raw.fits", raw)
    with fits.open(raw, mode="update") as hdul:
        hdul[0].header["DETECTOR"] = "NOSUCH"
    with pytest.raises(bestrefs.BestrefsError, match="error"):
        bestrefs.run([raw], crds_env, {}, sync=False)


def test_unknown_context_is_a_failure(tmp_path, testdata, crds_env):
    raw = tmp_path / "j8bt05njq_raw.fits"
    shutil.copyfile(testdata / "acs" / "j8bt05njq_raw.fits", raw)
    with pytest.raises(bestrefs.BestrefsError):
        bestrefs.run([raw], crds_env, {"CRDS_CONTEXT": "hst_9999.pmap"}, sync=False)


def test_not_a_cache(tmp_path):
    with pytest.raises(bestrefs.BestrefsError, match="not a CRDS cache"):
        bestrefs.run([tmp_path / "x_raw.fits"], tmp_path, {}, sync=False)

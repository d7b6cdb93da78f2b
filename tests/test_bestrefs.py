import shutil
from pathlib import Path

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
    result = bestrefs.run([raw], crds_env, "hst_0729.pmap", sync=False)
    header = fits.getheader(raw)
    assert header["BIASFILE"] == "jref$m4r1753rj_bia.fits"
    assert header["CRDS_CTX"] == "hst_0729.pmap"
    assert result.references["m4r1753rj_bia.fits"] == "jref"
    located = bestrefs.locate(result.references, crds_env)
    assert "m4r1753rj_bia.fits" in located.missing  # the test cache holds no bias files
    assert bestrefs.instruments([raw]) == ["ACS"]


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
        bestrefs.run([raw], crds_env, "hst_0729.pmap", sync=False)


def test_unknown_context_is_a_failure(tmp_path, testdata, crds_env):
    raw = tmp_path / "j8bt05njq_raw.fits"
    shutil.copyfile(testdata / "acs" / "j8bt05njq_raw.fits", raw)
    with pytest.raises(bestrefs.BestrefsError):
        bestrefs.run([raw], crds_env, "hst_9999.pmap", sync=False)


def test_not_a_cache(tmp_path):
    with pytest.raises(bestrefs.BestrefsError, match="not a CRDS cache"):
        bestrefs.run([tmp_path / "x_raw.fits"], tmp_path, "hst_0729.pmap", sync=False)


REFS = {"a_bia.fits": "jref", "b_drk.fits": "jref", "c_pfl.fits": "iref"}


def _put(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def _marked(cache: Path, mode: str | None) -> Path:
    (cache / "config" / "hst").mkdir(parents=True)
    if mode:
        (cache / "config" / "hst" / "ref_cache_subdir_mode").write_text(f"{mode}\n")
    return cache


@pytest.mark.parametrize("mode", ["flat", "instrument", None])
def test_locate_names_the_folders_where_the_files_are(tmp_path, mode):
    cache = _marked(tmp_path, mode)
    root = cache / "references" / "hst"
    if mode == "flat":
        _put(root, *REFS)
    else:
        _put(root / "acs", "a_bia.fits", "b_drk.fits")
        _put(root / "wfc3", "c_pfl.fits")
    located = bestrefs.locate(REFS, cache)
    assert located.missing == []
    for name, var in REFS.items():
        assert Path(located.dirs[var] + name).is_file()
    assert all(v.endswith("/") for v in located.dirs.values())


def test_locate_follows_the_files_against_the_marker(tmp_path):
    """A cache without a marker (CRDS then says "instrument") holding its files flat."""
    cache = _marked(tmp_path, None)
    _put(cache / "references" / "hst", *REFS)
    located = bestrefs.locate(REFS, cache)
    assert located.missing == []
    assert located.dirs["jref"] == located.dirs["iref"] == f"{cache}/references/hst/"
    assert located.dirs["oref"] == f"{cache}/references/hst/stis/"  # nothing to follow


def test_locate_reports_what_is_nowhere(tmp_path):
    cache = _marked(tmp_path, "flat")
    _put(cache / "references" / "hst", "a_bia.fits")
    _put(cache / "references" / "hst" / "acs", "b_drk.fits")  # split: not followed
    located = bestrefs.locate(REFS, cache)
    assert located.missing == ["b_drk.fits", "c_pfl.fits"]
    assert located.dirs["jref"] == f"{cache}/references/hst/"


DEFERRED_CHECK = r"""
import json, shutil, sys, types
from pathlib import Path
from caldp import bestrefs

def executed(name):
    return name in sys.modules and type(sys.modules[name]) is types.ModuleType

before = {name: executed(name) for name in bestrefs.DEFERRED_BY_CRDS}
bestrefs.load_crds()
raw = Path(sys.argv[1])
errors = bestrefs.assign([raw], "hst_0729.pmap", sync=False)
after_assign = {name: executed(name) for name in bestrefs.DEFERRED_BY_CRDS}
import asdf, requests
from astropy.table import Table
used = {"requests": callable(requests.Session), "astropy.table": len(Table({"a": [1, 2]})),
        "asdf": callable(asdf.open)}
print(json.dumps({"before": before, "after_assign": after_assign, "errors": errors,
                  "used": used, "executed_after_use": {n: executed(n) for n in used}}))
"""


def test_crds_is_loaded_without_what_bestrefs_never_uses(tmp_path, testdata, crds_env):
    """requests, astropy.table and asdf are loaded by their first use, not by CRDS's import."""
    import json
    import subprocess
    import sys

    raw = tmp_path / "j8bt05njq_raw.fits"
    shutil.copyfile(testdata / "acs" / "j8bt05njq_raw.fits", raw)
    done = subprocess.run(
        [sys.executable, "-c", DEFERRED_CHECK, str(raw)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    deferred = set(bestrefs.DEFERRED_BY_CRDS)
    assert report["before"] == dict.fromkeys(deferred, False)
    assert report["errors"] == 0 and fits.getheader(raw)["BIASFILE"] == "jref$m4r1753rj_bia.fits"
    assert report["after_assign"] == dict.fromkeys(deferred, False)  # CRDS never used them
    assert report["used"] == {"requests": True, "astropy.table": 2, "asdf": True}
    assert report["executed_after_use"] == dict.fromkeys(deferred, True)


def test_crds_loads_as_usual_what_was_imported_before(tmp_path):
    code = (
        "import sys, types, requests; from caldp import bestrefs; bestrefs.load_crds(); "
        "print(type(sys.modules['requests']) is types.ModuleType, "
        "type(sys.modules['astropy.table']) is types.ModuleType)"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]

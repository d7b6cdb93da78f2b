"""The synthetic inputs: valid FITS, labelled synthetic, and accepted by real CRDS bestrefs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from tests.support import synthetic


def all_inputs(folder: Path) -> dict[str, list[Path]]:
    """One of every kind, each in its own folder."""
    return {
        "acs_asn": synthetic.make_acs_association(folder / "acs_asn", "j8cb01010", members=3),
        "acs_raw": synthetic.make_acs_raw(folder / "acs_raw", "j8cb02a1q"),
        "acs_hrc": synthetic.make_acs_raw(folder / "acs_hrc", "j8bt05njq", detector="HRC"),
        "wfc3_asn": synthetic.make_wfc3_association(folder / "wfc3_asn", "ibqt01010"),
        "wfc3_uvis": synthetic.make_wfc3_raw(folder / "wfc3_uvis", "ibqt02a1q"),
        "wfc3_ir": synthetic.make_wfc3_raw(folder / "wfc3_ir", "ibqt03b1q", detector="IR"),
        "stis": synthetic.make_stis_raw(folder / "stis", "odj701ujq", wav=True, epc=True),
        "stis_image": synthetic.make_stis_raw(folder / "stis_im", "odj703k1q", obstype="IMAGING"),
        "stis_wav": synthetic.make_stis_wav_only(folder / "stis_wav", "odj702w1q"),
        "cos": synthetic.make_cos_association(folder / "cos", "ldfd02010", members=2),
        "svm": synthetic.make_svm_inputs(folder / "svm", "acs_8ph_01"),
        "mvm": synthetic.make_mvm_inputs(folder / "mvm", "skycell-p2381x06y09"),
    }


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, list[Path]]:
    return all_inputs(tmp_path_factory.mktemp("synthetic"))


def test_every_file_is_valid_fits_labelled_synthetic(made) -> None:
    count = 0
    for paths in made.values():
        for path in paths:
            assert path.is_file(), path
            if path.suffix != ".fits":
                continue
            with fits.open(path) as hdul:
                hdul.verify("exception")
                assert hdul[0].header["NEXTEND"] == len(hdul) - 1
                for hdu in hdul:
                    assert synthetic.SYNTHETIC_HISTORY in str(hdu.header["HISTORY"])
            count += 1
    assert count == 29  # every FITS file of every kind was checked


def test_acs_association_matches_its_table(made) -> None:
    asn, *raws = made["acs_asn"]
    assert asn.name == "j8cb01010_asn.fits"
    with fits.open(asn) as hdul:
        rows = [(r["MEMNAME"], r["MEMTYPE"], bool(r["MEMPRSNT"])) for r in hdul["ASN"].data]
    exposures = [name.lower() for name, kind, _ in rows if kind == "EXP-CRJ"]
    assert [p.name for p in raws] == [f"{n}_raw.fits" for n in exposures]
    assert ("J8CB01011", "PROD-CRJ", True) in rows and ("J8CB01010", "PROD-DTH", True) in rows
    for raw in raws:
        with fits.open(raw) as hdul:
            assert [h.name for h in hdul[1:]] == ["SCI", "ERR", "DQ"] * 2
            assert [h.header["CCDCHIP"] for h in hdul if h.name == "SCI"] == [2, 1]
            assert hdul["SCI", 1].data.dtype.name == "uint16"
            assert hdul["SCI", 1].data.shape == (64, 64)
            assert hdul[0].header["ASN_ID"] == "J8CB01010"
            assert hdul[0].header["CRSPLIT"] == 3


def test_missing_members_are_flagged_not_written(tmp_path: Path) -> None:
    paths = synthetic.make_wfc3_association(tmp_path, "ibqt01010", members=3, missing=["ibqt01a2q"])
    assert [p.name for p in paths[1:]] == ["ibqt01a1q_raw.fits", "ibqt01a3q_raw.fits"]
    with fits.open(paths[0]) as hdul:
        present = {r["MEMNAME"]: bool(r["MEMPRSNT"]) for r in hdul["ASN"].data}
    assert present["IBQT01A2Q"] is False and present["IBQT01A1Q"] is True


def test_wfc3_ir_has_multiaccum_reads(made) -> None:
    (raw,) = made["wfc3_ir"]
    with fits.open(raw) as hdul:
        assert hdul[0].header["NSAMP"] == 3
        assert [h.name for h in hdul[1:6]] == ["SCI", "ERR", "DQ", "SAMP", "TIME"]
        reads = [h.data.astype(float).mean() for h in hdul if h.name == "SCI"]
    assert reads == sorted(reads, reverse=True)  # imset 1 is the last, brightest read


def test_stis_and_cos_files(made) -> None:
    assert [p.name for p in made["stis"]] == [
        "odj701ujq_raw.fits",
        "odj701ujq_wav.fits",
        "odj701ujq_epc.fits",
    ]
    assert [p.name for p in made["stis_wav"]] == ["odj702w1q_wav.fits"]
    assert fits.getval(made["stis_wav"][0], "IMAGETYP") == "WAVECAL"
    names = [p.name for p in made["cos"]]
    assert names == [
        "ldfd02010_asn.fits",
        "ldfd02a1q_rawtag_a.fits",
        "ldfd02a1q_spt.fits",
        "ldfd02a2q_rawtag_a.fits",
        "ldfd02a2q_spt.fits",
    ]
    with fits.open(made["cos"][1]) as hdul:
        assert hdul["EVENTS"].columns.names == ["TIME", "RAWX", "RAWY", "PHA"]
        assert hdul["EVENTS"].header["DATE-OBS"] == "2017-06-30"
        assert len(hdul["EVENTS"].data) == hdul["EVENTS"].header["NEVENTS"]


def test_svm_poller_file(made) -> None:
    poller, *flcs = made["svm"]
    assert poller.name == "acs_8ph_01_input.out"
    lines = poller.read_text().splitlines()
    assert len(lines) == len(flcs) == 4
    for line, flc in zip(lines, flcs, strict=True):
        fields = line.split(",")
        assert len(fields) == 8
        assert fields[0] == flc.name and flc.name.startswith("j8ph01")
        assert fields[2:4] == ["8PH", "01"] and fields[6] == "WFC"
        assert Path(fields[7]) == flc.resolve()
    assert {line.split(",")[5] for line in lines} == {"F606W", "F814W"}
    with fits.open(flcs[0]) as hdul:
        assert hdul["SCI", 1].data.dtype.name == "float32"
        assert hdul[0].header["FILTER1"] == "F606W"


def test_mvm_poller_file_covers_two_visits(made) -> None:
    poller, *flcs = made["mvm"]
    assert poller.name == "skycell-p2381x06y09_input.out"
    rows = [line.split(",") for line in poller.read_text().splitlines()]
    assert all(len(row) == 10 and row[7] == "skycell-p2381x06y09" for row in rows)
    assert {row[0][:6] for row in rows} == {"j8ph01", "j8pi02"}
    assert [row[0] for row in rows] == [p.name for p in flcs]


def test_make_dataset_and_cal_env(tmp_path: Path) -> None:
    expected = {
        "j8cb010b0": "j8cb010b0_asn.fits",
        "j8cb01u1q": "j8cb01u1q_raw.fits",
        "ibqt04c1q": "ibqt04c1q_raw.fits",
        "oabc01010": "oabc01010_raw.fits",
        "ldfd03010": "ldfd03010_asn.fits",
        "acs_8ph_01": "acs_8ph_01_input.out",
        "skycell-p2381x06y09": "skycell-p2381x06y09_input.out",
    }
    for dataset, first in expected.items():
        assert synthetic.make_dataset(tmp_path / dataset, dataset)[0].name == first
    assert (tmp_path / "oabc01010" / "oabc01010_wav.fits").is_file()
    for bad in ("x1234567q", "lbad01abq", "wfc3_abc_01"):
        with pytest.raises(ValueError):
            synthetic.make_dataset(tmp_path / "bad", bad)
    env_file = synthetic.make_cal_env(tmp_path, "J8CB01U1Q", ["A=1", "B = two", "junk"])
    assert env_file.name == "j8cb01u1q_cal_env.txt"
    assert env_file.read_text() == "A=1\nB = two\njunk\n"


def test_generators_are_deterministic(tmp_path: Path) -> None:
    first = synthetic.make_acs_raw(tmp_path / "a", "j8cb02a1q")[0]
    second = synthetic.make_acs_raw(tmp_path / "b", "j8cb02a1q")[0]
    assert (fits.getdata(first, ("SCI", 1)) == fits.getdata(second, ("SCI", 1))).all()
    other = synthetic.make_acs_raw(tmp_path / "c", "j8cb02a2q")[0]
    assert (fits.getdata(first, ("SCI", 1)) != fits.getdata(other, ("SCI", 1))).any()


# ---------------------------------------------------------------------------
# real CRDS bestrefs on the real cache

BESTREFS_SCRIPT = """
import json, sys
from crds.bestrefs import assign_bestrefs
counts = {}
for name in sys.argv[1:]:
    counts[name] = assign_bestrefs([name], context="hst_0729.pmap", sync_references=False)
print("BESTREFS=" + json.dumps(counts))
"""

# Reference keywords every synthetic exposure of that kind must get from CRDS.
EXPECTED = {
    "acs_asn": ("jref", ["BPIXTAB", "BIASFILE", "DARKFILE", "PFLTFILE", "CRREJTAB", "IDCTAB"]),
    "acs_raw": ("jref", ["BIASFILE", "DARKFILE", "PFLTFILE", "PCTETAB", "DRKCFILE", "NPOLFILE"]),
    "acs_hrc": ("jref", ["BIASFILE", "DARKFILE", "PFLTFILE", "IDCTAB"]),
    "wfc3_asn": ("iref", ["BIASFILE", "DARKFILE", "PFLTFILE", "CRREJTAB", "PCTETAB"]),
    "wfc3_uvis": ("iref", ["BIASFILE", "DARKFILE", "PFLTFILE", "IDCTAB"]),
    "wfc3_ir": ("iref", ["DARKFILE", "PFLTFILE", "NLINFILE", "IDCTAB"]),
    "stis": ("oref", ["BIASFILE", "DARKFILE", "PFLTFILE", "DISPTAB", "XTRACTAB"]),
    "stis_image": ("oref", ["BIASFILE", "DARKFILE", "PFLTFILE", "IDCTAB"]),
    "stis_wav": ("oref", ["BIASFILE", "DISPTAB", "LAMPTAB", "WCPTAB"]),
    "cos": ("lref", ["FLATFILE", "DEADTAB", "BPIXTAB", "FLUXTAB", "DISPTAB", "XTRACTAB"]),
}


def raw_exposures(paths: list[Path]) -> list[Path]:
    return [p for p in paths if p.name.endswith(("_raw.fits", "_wav.fits", "_rawtag_a.fits"))]


def bestrefs(files: list[Path], crds_cache: Path) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    env.update(
        CRDS_PATH=str(crds_cache),
        CRDS_READONLY_CACHE="1",
        CRDS_SERVER_URL="https://127.0.0.1:9/",
    )
    result = subprocess.run(  # noqa: S603 - this Python, a fixed script
        [sys.executable, "-c", BESTREFS_SCRIPT, *map(str, files)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("BESTREFS=")][-1]
    return json.loads(line.removeprefix("BESTREFS="))


def test_real_bestrefs_accepts_every_synthetic_raw(tmp_path: Path, crds_cache: Path) -> None:
    made = all_inputs(tmp_path)
    files = {kind: raw_exposures(made[kind]) for kind in EXPECTED}
    broken = tmp_path / "broken" / "j8cb09a1q_raw.fits"
    synthetic.make_acs_raw(broken.parent, "j8cb09a1q")
    fits.setval(broken, "DETECTOR", value="XYZ")  # proves that errors are counted
    every = [path for paths in files.values() for path in paths]
    counts = bestrefs([*every, broken], crds_cache)
    assert counts[str(broken)] > 0
    assert {name: n for name, n in counts.items() if n and name != str(broken)} == {}
    for kind, paths in files.items():
        prefix, keywords = EXPECTED[kind]
        assert paths, kind
        for path in paths:
            header = fits.getheader(path)
            assert header["CRDS_CTX"] == "hst_0729.pmap"
            for keyword in keywords:
                value = header[keyword]
                assert value.startswith(f"{prefix}$") and value.endswith(".fits"), (
                    kind,
                    path.name,
                    keyword,
                    value,
                )

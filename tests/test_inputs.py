import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from caldp import inputs
from caldp.datasets import parse
from caldp.instruments import HANDLERS


def touch_fits(path, **header):
    hdu = fits.PrimaryHDU(np.zeros((2, 2), dtype=np.int16))
    for k, v in header.items():
        hdu.header[k] = v
    hdu.writeto(path)
    return path


def write_asn(path, members, product):
    t = Table(
        {
            "MEMNAME": [m.upper() for m in members] + [product.upper()],
            "MEMTYPE": ["EXP-CRJ"] * len(members) + ["PROD-CRJ"],
            "MEMPRSNT": [True] * (len(members) + 1),
        }
    )
    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(t)]).writeto(path)


def test_exact_membership_never_a_prefix(tmp_path):
    # j8cb01abq and j8cb01abz share a long prefix; only the dataset's own files are picked
    for name in (
        "j8cb01abq_raw.fits",
        "j8cb01abz_raw.fits",
        "j8cb01abq_spt.fits",
        "j8cb01abq_flt.fits",
    ):
        touch_fits(tmp_path / name)
    sel = inputs.select(parse("j8cb01abq"), HANDLERS["acs"], tmp_path.iterdir())
    assert [p.name for p in sel.files] == ["j8cb01abq_raw.fits"]


def test_association_members_from_the_table(tmp_path):
    write_asn(tmp_path / "j8cb010b0_asn.fits", ["j8cb01u1q", "j8cb01u2q"], "j8cb010b1")
    for name in ("j8cb01u1q_raw.fits", "j8cb01u2q_raw.fits", "j8cb01u3q_raw.fits"):
        touch_fits(tmp_path / name)
    sel = inputs.select(parse("j8cb010b0"), HANDLERS["acs"], tmp_path.iterdir())
    assert [p.name for p in sel.files] == [
        "j8cb010b0_asn.fits",
        "j8cb01u1q_raw.fits",
        "j8cb01u2q_raw.fits",
    ]


def test_association_missing_member_or_table(tmp_path):
    write_asn(tmp_path / "j8cb010b0_asn.fits", ["j8cb01u1q", "j8cb01u2q"], "j8cb010b1")
    touch_fits(tmp_path / "j8cb01u1q_raw.fits")
    with pytest.raises(inputs.InputsError, match="j8cb01u2q"):
        inputs.select(parse("j8cb010b0"), HANDLERS["acs"], tmp_path.iterdir())
    (tmp_path / "j8cb010b0_asn.fits").unlink()
    with pytest.raises(inputs.InputsError, match="_asn.fits"):
        inputs.select(parse("j8cb010b0"), HANDLERS["acs"], tmp_path.iterdir())


def test_nothing_found(tmp_path):
    touch_fits(tmp_path / "j8cb01abz_raw.fits")
    with pytest.raises(inputs.InputsError, match="no input files"):
        inputs.select(parse("j8cb01abq"), HANDLERS["acs"], tmp_path.iterdir())


def test_gz_and_plain_twice_is_an_error(tmp_path):
    raw = touch_fits(tmp_path / "lb4l02m2q_rawacq.fits")
    with gzip.open(tmp_path / "lb4l02m2q_rawacq.fits.gz", "wb") as f:
        f.write(raw.read_bytes())
    with pytest.raises(inputs.InputsError, match="twice"):
        inputs.select(parse("lb4l02m2q"), HANDLERS["cos"], tmp_path.iterdir())


def test_env_file_and_poller(tmp_path):
    (tmp_path / "acs_8ph_01_input.out").write_text(
        "j8ph01a1q_flc.fits,9999,8ph,01,500.0,F606W,WFC,/data/j8ph01a1q_flc.fits\n"
        "j8ph01a2q_flc.fits,9999,8ph,01,500.0,F814W,WFC,/data/j8ph01a2q_flc.fits\n"
    )
    (tmp_path / "acs_8ph_01_cal_env.txt").write_text("A=1\n")
    for name in ("j8ph01a1q_flc.fits", "j8ph01a2q_flc.fits", "j8ph01a3q_flc.fits"):
        touch_fits(tmp_path / name)
    sel = inputs.select(parse("acs_8ph_01"), HANDLERS["svm"], tmp_path.iterdir())
    assert [p.name for p in sel.files] == ["j8ph01a1q_flc.fits", "j8ph01a2q_flc.fits"]
    assert sel.poller.name == "acs_8ph_01_input.out"
    assert sel.env_file.name == "acs_8ph_01_cal_env.txt"
    (tmp_path / "j8ph01a2q_flc.fits").unlink()
    with pytest.raises(inputs.InputsError, match="j8ph01a2q_flc.fits"):
        inputs.select(parse("acs_8ph_01"), HANDLERS["svm"], tmp_path.iterdir())


def test_stage_copies_and_gunzips_leaving_originals(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    raw = touch_fits(src / "lb4l02m2q_rawacq.fits")
    with gzip.open(src / "lb4l02m2q_spt.fits.gz", "wb") as f:
        f.write(raw.read_bytes())
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}
    work = tmp_path / "work"
    work.mkdir()
    staged = inputs.stage(sorted(src.iterdir()), work, max_bytes=2**30)
    assert sorted(p.name for p in staged) == ["lb4l02m2q_rawacq.fits", "lb4l02m2q_spt.fits"]
    fits.setval(staged[0], "RANDSEED", value=1)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}
    assert before == after


def test_stis_association_exposures_are_in_its_own_raw(tmp_path):
    # STIS keeps an association's exposures in <asn>_raw.fits: no file per member
    write_asn(tmp_path / "o4er06010_asn.fits", ["o4er06llq", "o4er06lmq"], "o4er06010")
    touch_fits(tmp_path / "o4er06010_raw.fits")
    touch_fits(tmp_path / "o4er06010_wav.fits")
    sel = inputs.select(parse("o4er06010"), HANDLERS["stis"], tmp_path.iterdir())
    assert [p.name for p in sel.files] == [
        "o4er06010_asn.fits",
        "o4er06010_raw.fits",
        "o4er06010_wav.fits",
    ]


def _bomb(path: Path, size: int) -> Path:
    """A .fits.gz of ``size`` zero bytes (a thousandth of that on disk)."""
    with gzip.open(path, "wb") as f:
        for _ in range(size // 2**20):
            f.write(bytes(2**20))
    return path


def test_stage_stops_a_fits_gz_bomb_at_the_byte_limit(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    bomb = _bomb(src / "j8cb01u1q_raw.fits.gz", 64 * 2**20)
    assert bomb.stat().st_size < 2**20
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(inputs.InputsError, match="16777216 byte limit .* at j8cb01u1q_raw.fits.gz"):
        inputs.stage([bomb], work, max_bytes=16 * 2**20)
    assert list(work.iterdir()) == []  # the part written is removed


def test_stage_limit_is_on_the_sum_of_the_decompressed_inputs(tmp_path):
    """Three files of 6 MiB, each under a 16 MiB limit, plain or not."""
    limit = 16 * 2**20
    src = tmp_path / "src"
    src.mkdir()
    files = [_bomb(src / f"j8cb01u{k}q_raw.fits.gz", 6 * 2**20) for k in range(2)]
    (src / "j8cb01u2q_raw.fits").write_bytes(bytes(6 * 2**20))
    files.append(src / "j8cb01u2q_raw.fits")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(inputs.InputsError, match="byte limit"):
        inputs.stage(files, work, max_bytes=limit)
    assert list(work.iterdir()) == []  # the copies made before are removed too
    assert len(inputs.stage(files[:2], work, max_bytes=limit)) == 2

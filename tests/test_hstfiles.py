"""Association tables and poller files: one reader each, one answer for every caller."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from caldp import inputs, previews
from caldp.datasets import parse
from caldp.errors import DownloadError
from caldp.hstfiles import HstFileError, read_association, read_poller
from caldp.instruments import HANDLERS
from caldp.settings import Settings
from caldp.storage import astroquery as aq


def write_asn(path, names, types, present=None):
    columns = {"MEMNAME": [n.upper() for n in names], "MEMTYPE": types}
    if present is not None:
        columns["MEMPRSNT"] = present
    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(Table(columns))]).writeto(path)
    return path


def touch_fits(path):
    fits.PrimaryHDU(np.zeros((2, 2), dtype=np.int16)).writeto(path)
    return path


# The case callers used to answer three ways: exposures u1q and u2q (u2q not present)
# and the product 010b0.
NAMES = ["j8cb01u1q", "j8cb01u2q", "j8cb010b0"]
TYPES = ["EXP-CRJ", "EXP-CRJ", "PROD-CRJ"]
PRESENT = [True, False, True]


def test_exposures_are_the_present_ones_rootnames_are_all(tmp_path):
    asn = read_association(write_asn(tmp_path / "j8cb010b0_asn.fits", NAMES, TYPES, PRESENT))
    assert asn.exposures == ["j8cb01u1q"]
    assert asn.rootnames == {"j8cb01u1q", "j8cb01u2q", "j8cb010b0"}


def test_without_memprsnt_every_member_is_present(tmp_path):
    asn = read_association(write_asn(tmp_path / "a_asn.fits", NAMES, TYPES))
    assert asn.exposures == ["j8cb01u1q", "j8cb01u2q"]


def test_memprsnt_as_text(tmp_path):
    asn = read_association(write_asn(tmp_path / "a_asn.fits", NAMES, TYPES, ["T", "F", "T"]))
    assert asn.exposures == ["j8cb01u1q"]


@pytest.mark.parametrize("content", [b"not fits at all", None])
def test_unreadable_association(tmp_path, content):
    path = tmp_path / "a_asn.fits"
    if content is None:
        fits.HDUList([fits.PrimaryHDU()]).writeto(path)  # no table
    else:
        path.write_bytes(content)
    with pytest.raises(HstFileError, match="a_asn.fits"):
        read_association(path)


def test_inputs_do_not_need_a_member_that_is_not_present(tmp_path):
    write_asn(tmp_path / "j8cb010b0_asn.fits", NAMES, TYPES, PRESENT)
    touch_fits(tmp_path / "j8cb01u1q_raw.fits")
    selection = inputs.select(parse("j8cb010b0"), HANDLERS["acs"], tmp_path.iterdir())
    assert [p.name for p in selection.files] == ["j8cb010b0_asn.fits", "j8cb01u1q_raw.fits"]


def test_previews_take_products_of_every_listed_rootname(tmp_path):
    write_asn(tmp_path / "j8cb010b0_asn.fits", NAMES, TYPES, PRESENT)
    for name in ("j8cb01u1q_flt.fits", "j8cb010b0_drz.fits", "j8cb01zzq_flt.fits"):
        touch_fits(tmp_path / name)
    chosen = previews.select_products("acs", tmp_path, "j8cb010b0")
    assert [p.name for p in chosen] == ["j8cb010b0_drz.fits", "j8cb01u1q_flt.fits"]


# ------------------------------------------------------------------ poller files


def test_poller_names_as_listed(tmp_path):
    path = tmp_path / "p.out"
    path.write_text("# comment\n\nj8ph01a1q_flc.fits,9999,8ph\nj8ph01a2q_flc.fits\n")
    assert read_poller(path) == ["j8ph01a1q_flc.fits", "j8ph01a2q_flc.fits"]


@pytest.mark.parametrize(
    "field",
    [
        "../../etc/passwd",
        "/data/j8ph01a1q_flc.fits",
        "sub\\x.fits",
        "..",
        "data/J8PH01A1Q_flc.fits",
    ],
)
def test_poller_paths_are_refused(tmp_path, field):
    (tmp_path / "p.out").write_text(f"{field},1\n")
    with pytest.raises(HstFileError, match="bare file names"):
        read_poller(tmp_path / "p.out")


def test_empty_or_missing_poller(tmp_path):
    (tmp_path / "p.out").write_text("# nothing\n")
    with pytest.raises(HstFileError, match="lists no files"):
        read_poller(tmp_path / "p.out")
    with pytest.raises(HstFileError, match="cannot read"):
        read_poller(tmp_path / "absent.out")


def test_a_poller_path_is_refused_by_inputs_and_by_mast_alike(tmp_path):
    poller = "data/J8PH01A1Q_flc.fits,9999,8ph,01\n"
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "acs_8ph_01_input.out").write_text(poller)
    touch_fits(folder / "j8ph01a1q_flc.fits")
    with pytest.raises(inputs.InputsError, match="bare file names"):
        inputs.select(parse("acs_8ph_01"), HANDLERS["svm"], folder.iterdir())
    with pytest.raises(DownloadError, match="bare file names"):
        aq.fetch(str(folder), parse("acs_8ph_01"), tmp_path / "download", Settings.read())
    assert [p.name for p in (tmp_path / "download").iterdir()] == ["acs_8ph_01_input.out"]


def test_mast_refuses_a_name_it_cannot_have(tmp_path):
    (tmp_path / "acs_8ph_01_input.out").write_text("J8PH01A1Q_FLC.fits,9999\n")
    with pytest.raises(aq.AstroqueryError, match="not a MAST file name"):
        aq.fetch(str(tmp_path), parse("acs_8ph_01"), tmp_path / "download", Settings.read())

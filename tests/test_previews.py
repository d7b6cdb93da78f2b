"""Which products get previews, and making them (caldp.previews)."""

from __future__ import annotations

import errno
import logging
import re
from pathlib import Path

import pytest
from astropy.io import fits

from caldp import previews
from caldp.previews import images
from tests.support.fits_images import sky, wfc_like, write_chips

# ---------------------------------------------------------------- product selection


def touch_fits(path: Path, header: dict | None = None) -> Path:
    fits.PrimaryHDU(header=fits.Header(header or {})).writeto(path)
    return path


def names(paths) -> list[str]:
    return sorted(p.name for p in paths)


def test_select_single_exposure_exactly(tmp_path):
    for name in [
        "j8bt05njq_raw.fits",
        "j8bt05njq_flt.fits",
        "j8bt05njq_spt.fits",  # not a previewed suffix
        "j8bt05nkq_flt.fits",  # another dataset sharing the prefix
        "j8bt05njq_x1d.fits",  # not an ACS preview
    ]:
        touch_fits(tmp_path / name)
    (tmp_path / "j8bt05njq.tra").write_text("log")
    selected = previews.select_products("acs", tmp_path, "j8bt05njq")
    assert names(selected) == ["j8bt05njq_flt.fits", "j8bt05njq_raw.fits"]


def write_asn(path: Path, members: list[tuple[str, str]]) -> None:
    cols = fits.ColDefs(
        [
            fits.Column("MEMNAME", "14A", array=[m.upper() for m, _ in members]),
            fits.Column("MEMTYPE", "14A", array=[t for _, t in members]),
            fits.Column("MEMPRSNT", "L", array=[True] * len(members)),
        ]
    )
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)


def test_select_association_members_from_the_table(tmp_path):
    write_asn(
        tmp_path / "j8cb01010_asn.fits",
        [("j8cb01u2q", "EXP-CRJ"), ("j8cb01u3q", "EXP-CRJ"), ("j8cb01011", "PROD-CRJ")],
    )
    for name in [
        "j8cb01u2q_flt.fits",
        "j8cb01u3q_flt.fits",
        "j8cb01u3q_raw.fits",
        "j8cb01011_crj.fits",
        "j8cb01010_drz.fits",
        "j8cb01u4q_flt.fits",  # a member of another association
        "j8cb01020_drz.fits",
    ]:
        touch_fits(tmp_path / name)
    selected = previews.select_products("acs", tmp_path, "j8cb01010")
    assert names(selected) == [
        "j8cb01010_drz.fits",
        "j8cb01011_crj.fits",
        "j8cb01u2q_flt.fits",
        "j8cb01u3q_flt.fits",
        "j8cb01u3q_raw.fits",
    ]


def test_select_association_members_by_header_without_table(tmp_path):
    touch_fits(tmp_path / "ldfd01vnq_x1d.fits", {"ASN_ID": "LDFD01010"})
    touch_fits(tmp_path / "ldfd01010_x1dsum3.fits", {"ASN_ID": "LDFD01010"})
    touch_fits(tmp_path / "ldfd01vxq_x1d.fits", {"ASN_ID": "LDFD01020"})
    touch_fits(tmp_path / "ldfd01vlq_x1d.fits")  # a separate exposure, no association
    selected = previews.select_products("cos", tmp_path, "ldfd01010")
    assert names(selected) == ["ldfd01010_x1dsum3.fits", "ldfd01vnq_x1d.fits"]


def test_select_svm_visit_and_mvm_skycell(tmp_path):
    svm_names = [
        "hst_9984_01_acs_wfc_f606w_j8ph01_drc.fits",
        "hst_9984_01_acs_wfc_total_j8ph01_drc.fits",
        "hst_9984_01_acs_wfc_f606w_j8ph01a1_drc.fits",  # exposure level
        "hst_9984_01_acs_wfc_f606w_j8ph01a1_flc.fits",  # not a preview suffix
        "hst_9984_11_acs_wfc_f606w_j8ph11_drc.fits",  # another visit
        "hst_skycell-p2381x06y09_acs_wfc_f606w_all_drc.fits",
        "hst_skycell-p2381x06y10_acs_wfc_f606w_all_drc.fits",
    ]
    for name in svm_names:
        touch_fits(tmp_path / name)
    assert names(previews.select_products("svm", tmp_path, "acs_8ph_01")) == sorted(svm_names[:3])
    assert names(previews.select_products("mvm", tmp_path, "skycell-p2381x06y09")) == [
        "hst_skycell-p2381x06y09_acs_wfc_f606w_all_drc.fits"
    ]


# ---------------------------------------------------------------- make_previews


def test_make_previews_logs_each_file_and_skips_failures(tmp_path, caplog):
    products, out = tmp_path / "products", tmp_path / "previews"
    products.mkdir()
    wfc_like(products / "jabc01xyq_flc.fits")
    write_chips(products / "jabc01xyq_flt.fits", [{"sci": sky((50, 60))}])
    (products / "jabc01xyq_raw.fits").write_bytes(b"SIMPLE  =  this is not FITS" * 100)
    with caplog.at_level(logging.INFO, logger="caldp.previews"):
        report = previews.make_previews("acs", "jabc01xyq", products, out)
    assert not report.ok
    assert list(report.failures) == ["jabc01xyq_raw.fits"]
    assert names(report.made) == [
        "jabc01xyq_flc.jpg",
        "jabc01xyq_flc_thumb.jpg",
        "jabc01xyq_flt.jpg",
        "jabc01xyq_flt_thumb.jpg",
    ]
    assert all(p.exists() and p.parent == out for p in report.made)
    assert not list(out.glob("*.part"))
    lines = [r.getMessage() for r in caplog.records]
    assert any(re.search(r"jabc01xyq_flc\.fits -> .*jpg.* \(\d+\.\d\d s\)", m) for m in lines)
    assert any("jabc01xyq_raw.fits" in m and "no preview" in m for m in lines)


def test_memory_errors_are_not_swallowed(tmp_path, monkeypatch):
    wfc_like(tmp_path / "jabc01xyq_flc.fits")

    def out_of_memory(*args, **kwargs):
        raise MemoryError("simulated")

    monkeypatch.setattr(images, "render_file", out_of_memory)
    with pytest.raises(MemoryError):
        previews.make_previews("acs", "jabc01xyq", tmp_path, tmp_path / "out")


def test_unknown_kind_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        previews.select_products("wfpc2", tmp_path, "u2aq0101t")


def test_previews_do_not_swallow_cannot_allocate_memory(tmp_path, monkeypatch):
    product = tmp_path / "j8cb01u1q_flt.fits"
    product.write_bytes(b"")

    def fails(*args):
        raise OSError("Cannot allocate memory")  # as numpy or a library words it, no errno

    monkeypatch.setattr(previews, "preview_product", fails)
    with pytest.raises(OSError, match="Cannot allocate memory"):
        previews.preview_files([product], ["acs"], tmp_path / "out")

    def io_error(*args):
        raise OSError(errno.EIO, "io")

    monkeypatch.setattr(previews, "preview_product", io_error)
    report = previews.preview_files([product], ["acs"], tmp_path / "out")
    assert "io" in report.failures[product.name]  # other errors: logged and skipped


def test_unreadable_association_table_falls_back_to_headers(tmp_path, caplog):
    (tmp_path / "j8cb01010_asn.fits").write_bytes(b"garbage" * 500)
    touch_fits(tmp_path / "j8cb01u2q_flt.fits", {"ASN_ID": "J8CB01010"})
    touch_fits(tmp_path / "j8cb01u4q_flt.fits", {"ASN_ID": "J8CB01020"})
    with caplog.at_level(logging.WARNING, logger="caldp.previews"):
        selected = previews.select_products("acs", tmp_path, "j8cb01010")
    assert names(selected) == ["j8cb01u2q_flt.fits"]
    assert "cannot read the association table j8cb01010_asn.fits" in caplog.text

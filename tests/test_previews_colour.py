"""Colour previews of SVM and MVM filter products (caldp.previews.colour)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from caldp import previews
from caldp.previews import colour
from tests.support.fits_images import add_star, jpeg, sky, write_chips


def filter_product(path: Path, blob_at: tuple[int, int], shape=(120, 160)) -> Path:
    image = sky(shape, level=10.0, noise=1.0, seed=len(path.name))
    add_star(image, *blob_at, 4000.0, sigma=5.0)
    wht = np.ones(shape, np.float32)
    return write_chips(path, [{"sci": image, "wht": wht}])


def test_svm_colour_preview(tmp_path):
    stem = "hst_9984_01_acs_wfc_{}_j8ph01_drc.fits"
    filter_product(tmp_path / stem.format("f435w"), (30, 30))  # blue
    filter_product(tmp_path / stem.format("f606w"), (60, 80))  # green
    filter_product(tmp_path / stem.format("f814w"), (90, 130))  # red
    filter_product(tmp_path / stem.format("total"), (60, 80))
    report = previews.make_previews("svm", "acs_8ph_01", tmp_path, tmp_path / "out")
    assert report.ok, report.failures
    colour_full = tmp_path / "out" / "hst_9984_01_acs_wfc_total_j8ph01_drc_color.jpg"
    colour_thumb = tmp_path / "out" / "hst_9984_01_acs_wfc_total_j8ph01_drc_color_thumb.jpg"
    assert colour_full in report.made and colour_thumb in report.made
    rgb = jpeg(colour_full)
    assert rgb.shape == (120, 160, 3)
    assert max(jpeg(colour_thumb).shape[:2]) == 128

    def at(y, x):
        return rgb[120 - 1 - y, x]  # FITS rows bottom-up

    red, green, blue = at(90, 130), at(60, 80), at(30, 30)
    assert red[0] > 200 and red[1] < 120 and red[2] < 120
    assert green[1] > 200 and green[0] < 120 and green[2] < 120
    assert blue[2] > 200 and blue[0] < 120 and blue[1] < 120


def test_colour_groups_order_by_pivot_and_need_two_filters(tmp_path, caplog):
    stem = "hst_11360_05_wfc3_uvis_{}_ib1f05_drc.fits"
    paths = [tmp_path / stem.format(f) for f in ("f814w", "f336w", "f555w", "f657n", "fxyzw")]
    lone = tmp_path / "hst_11360_05_wfc3_ir_f160w_ib1f05_drz.fits"
    with caplog.at_level(logging.WARNING, logger="caldp.previews"):
        groups = colour.colour_groups([*paths, lone])
    assert "fxyzw" in caplog.text
    assert len(groups) == 1  # the IR filter alone makes no colour picture
    (group,) = groups
    assert group.name == "hst_11360_05_wfc3_uvis_total_ib1f05_drc_color"
    red, green, blue = colour.channel_files(group)
    assert [p.name.split("_")[5] for p in red + green + blue] == [
        "f814w",
        "f555w",
        "f657n",
        "f336w",
    ]


def test_mvm_colour_thumbnail_is_512(tmp_path):
    stem = "hst_skycell-p2381x06y09_wfc3_ir_{}_coarse-all_drz.fits"
    filter_product(tmp_path / stem.format("f110w"), (100, 100), shape=(600, 640))
    filter_product(tmp_path / stem.format("f160w"), (400, 500), shape=(600, 640))
    report = previews.make_previews("mvm", "skycell-p2381x06y09", tmp_path, tmp_path / "out")
    assert report.ok, report.failures
    thumb = (
        tmp_path / "out" / "hst_skycell-p2381x06y09_wfc3_ir_total_coarse-all_drz_color_thumb.jpg"
    )
    assert jpeg(thumb).shape == (480, 512, 3)
    single_thumb = (
        tmp_path / "out" / "hst_skycell-p2381x06y09_wfc3_ir_f160w_coarse-all_drz_thumb.jpg"
    )
    assert jpeg(single_thumb).shape == (480, 512)


def test_colour_preview_of_mismatched_sizes_fails_alone(tmp_path):
    stem = "hst_9984_01_acs_wfc_{}_j8ph01_drc.fits"
    filter_product(tmp_path / stem.format("f435w"), (30, 30))
    filter_product(tmp_path / stem.format("f814w"), (30, 30), shape=(100, 100))
    report = previews.make_previews("svm", "acs_8ph_01", tmp_path, tmp_path / "out")
    assert list(report.failures) == ["hst_9984_01_acs_wfc_total_j8ph01_drc_color"]
    assert "differ in size" in report.failures["hst_9984_01_acs_wfc_total_j8ph01_drc_color"]
    assert len(report.made) == 4  # the two grey previews of each filter

"""The ``caldp-previews`` command (caldp.previews.cli)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from caldp.previews import cli
from tests.conftest import require_testdata
from tests.support.fits_images import rgb


def cos_dir() -> Path:
    return require_testdata().joinpath("cos", "ldfd01010", "calcos-3.3.4")


def small_image(path: Path) -> Path:
    rng = np.random.default_rng(7)
    fits.HDUList(
        [
            fits.PrimaryHDU(header=fits.Header({"INSTRUME": "WFC3"})),
            fits.ImageHDU(
                rng.normal(10, 1, (64, 80)).astype(np.float32), fits.Header({"EXTNAME": "SCI"})
            ),
        ]
    ).writeto(path)
    return path


def test_cli_makes_previews_and_exits_0(tmp_path, capsys):
    image = small_image(tmp_path / "iabc01xyq_flt.fits")
    out = tmp_path / "new" / "dir"
    assert cli.main(["-o", str(out), str(image)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "iabc01xyq_flt.jpg",
        "iabc01xyq_flt_thumb.jpg",
    ]
    assert "iabc01xyq_flt.fits ->" in capsys.readouterr().err


def test_cli_real_cos_gzipped_product(tmp_path):
    x1d = cos_dir() / "ldfd01vnq_x1d.fits.gz"
    assert cli.main(["-o", str(tmp_path), str(x1d)]) == 0
    assert (tmp_path / "ldfd01vnq_x1d_prev.fits").exists()
    assert Image.open(tmp_path / "ldfd01vnq_x1d_thumb.png").size == (128, 128)


def test_cli_exits_28_when_some_preview_fails(tmp_path, capsys):
    good = small_image(tmp_path / "iabc01xyq_flt.fits")
    bad = tmp_path / "iabc01xzq_flt.fits"
    bad.write_bytes(b"not a FITS file at all" * 200)
    assert cli.main(["-o", str(tmp_path / "out"), str(good), str(bad)]) == 28
    assert (tmp_path / "out" / "iabc01xyq_flt_thumb.jpg").exists()
    assert "iabc01xzq_flt.fits" in capsys.readouterr().err


def test_cli_corrupt_file_is_reported_once_and_leaves_no_empty_folder(tmp_path, capsys):
    whole = small_image(tmp_path / "whole_flt.fits").read_bytes()
    bad = tmp_path / "iabc01xzq_flt.fits"
    bad.write_bytes(whole[:4000])  # cut inside the first extension's header
    out = tmp_path / "out"
    assert cli.main(["-o", str(out), str(bad)]) == 28
    err = capsys.readouterr().err
    assert err.count("iabc01xzq_flt.fits") == 1, err
    assert "Header size is not multiple of 2880" in err  # what is wrong with the file
    assert "There may be extra bytes" not in err  # not the reading library's advice
    assert not out.exists()


def test_cli_skips_files_that_get_no_preview(tmp_path, capsys):
    good = small_image(tmp_path / "iabc01xyq_flt.fits")
    spt = small_image(tmp_path / "iabc01xyq_spt.fits")
    stis_image = small_image(tmp_path / "oabc01xyq_flt.fits")
    fits.setval(stis_image, "INSTRUME", value="STIS")  # STIS images get no image preview
    assert cli.main(["-o", str(tmp_path / "out"), str(good), str(spt), str(stis_image)]) == 0
    assert len(list((tmp_path / "out").iterdir())) == 2
    err = capsys.readouterr().err
    assert "iabc01xyq_spt.fits" in err and "oabc01xyq_flt.fits" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--no-such-option", "x_flt.fits"],
        ["{tmp}/missing_flt.fits"],
        ["{tmp}/iabc01xyq_spt.fits"],
        ["-o", "{tmp}/iabc01xyq_flt.fits", "{tmp}/iabc01xyq_flt.fits"],
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path, argv):
    small_image(tmp_path / "iabc01xyq_flt.fits")
    small_image(tmp_path / "iabc01xyq_spt.fits")
    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2


def test_cli_help_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    assert "caldp-previews" in capsys.readouterr().out


def test_cli_colour_preview_of_svm_filter_products(tmp_path):
    rng = np.random.default_rng(8)
    files = []
    for name in ("f435w", "f814w"):
        path = tmp_path / f"hst_9984_01_acs_wfc_{name}_j8ph01_drc.fits"
        data = rng.normal(5, 1, (50, 70)).astype(np.float32)
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]).writeto(path)
        files.append(str(path))
    assert cli.main(["-o", str(tmp_path / "out"), *files]) == 0
    colour = tmp_path / "out" / "hst_9984_01_acs_wfc_total_j8ph01_drc_color.jpg"
    assert rgb(colour).shape == (50, 70, 3)

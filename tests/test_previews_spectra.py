"""Spectral previews of STIS and COS products: spec-plots in-process (caldp.previews.spectra)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from caldp import previews
from caldp.previews import spectra
from tests.conftest import require_testdata
from tests.support.fits_images import rgb

COS_PRODUCTS = ("cos", "ldfd01010", "calcos-3.3.4")


def cos_dir() -> Path:
    return require_testdata().joinpath(*COS_PRODUCTS)


def open_figures() -> list[int]:
    from matplotlib import pyplot

    return pyplot.get_fignums()


def plot_statistics(path: Path) -> tuple[float, float]:
    """Fractions of white background and of the default (blue) line colour in a plot."""
    pixels = rgb(path)
    white = (pixels.min(axis=2) >= 250).mean()
    line = (np.abs(pixels - np.array([31, 119, 180])).max(axis=2) < 40).mean()
    return float(white), float(line)


def stis_x1d(path: Path, orders: int = 2, nelem: int = 1024) -> Path:
    """A small STIS x1d: one table row per spectral order, a smooth continuum with lines."""
    wave = np.array([np.linspace(1150 + 200 * i, 1350 + 200 * i, nelem) for i in range(orders)])
    flux = 1e-13 * (1 + 0.3 * np.sin(wave / 7.0)) * np.exp(-(((wave - 1400) / 400) ** 2))
    cols = fits.ColDefs(
        [
            fits.Column("SPORDER", "I", array=np.arange(orders) + 1),
            fits.Column("NELEM", "I", array=np.full(orders, nelem)),
            fits.Column("WAVELENGTH", f"{nelem}D", array=wave),
            fits.Column("FLUX", f"{nelem}E", array=flux),
            fits.Column("ERROR", f"{nelem}E", array=flux * 0.05),
            fits.Column("DQ", f"{nelem}I", array=np.zeros((orders, nelem), np.int16)),
        ]
    )
    primary = fits.PrimaryHDU(header=fits.Header({"INSTRUME": "STIS", "OPT_ELEM": "E140M"}))
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols)]).writeto(path)
    return path


def test_cos_association_previews_from_real_products(tmp_path, caplog):
    source = cos_dir()
    products = tmp_path / "products"
    products.mkdir()
    for name in (
        "ldfd01010_x1dsum.fits.gz",
        "ldfd01010_x1dsum2.fits.gz",
        "ldfd01vnq_x1d.fits.gz",
        "ldfd01vnq_flt_a.fits.gz",  # not previewed
        "ldfd01vlq_flt.fits.gz",  # another dataset (the target acquisition)
    ):
        shutil.copy(source / name, products / name)
    shutil.copy(source.parent / "raw" / "ldfd01010_asn.fits.gz", products)
    before = open_figures()
    with caplog.at_level(logging.INFO, logger="caldp.previews"):
        report = previews.make_previews("cos", "ldfd01010", products, tmp_path / "out")
    assert report.ok, report.failures
    assert open_figures() == before  # spec-plots' figures are closed
    assert sorted(p.name for p in report.made) == sorted(
        f"{base}{end}"
        for base in ("ldfd01010_x1dsum", "ldfd01010_x1dsum2", "ldfd01vnq_x1d")
        for end in (".png", "_thumb.png", "_prev.fits")
    )
    out = tmp_path / "out"
    assert Image.open(out / "ldfd01010_x1dsum.png").size == (1024, 1024)
    assert Image.open(out / "ldfd01010_x1dsum_thumb.png").size == (128, 128)
    white, line = plot_statistics(out / "ldfd01010_x1dsum.png")
    assert 0.8 < white < 0.97 and 0.02 < line < 0.15
    white, line = plot_statistics(out / "ldfd01010_x1dsum_thumb.png")
    assert 0.7 < white < 0.95 and 0.02 < line < 0.15
    with fits.open(out / "ldfd01010_x1dsum_prev.fits") as prev:
        table = prev[1].data
        assert {"wls", "fls", "flerrs", "segment"} <= set(table.columns.names)
        assert len(table) > 1000
        assert 900 < np.nanmin(table["wls"]) < np.nanmax(table["wls"]) < 2500
    assert sum("ldfd01vnq_x1d.fits.gz ->" in r.getMessage() for r in caplog.records) == 1


def test_stis_previews_have_no_fits_preview(tmp_path):
    path = stis_x1d(tmp_path / "oabc01xyq_x1d.fits")
    made = previews.preview_product(path, tmp_path / "out", "stis")
    assert [p.name for p in made] == ["oabc01xyq_x1d.png", "oabc01xyq_x1d_thumb.png"]
    assert Image.open(made[0]).size == (1024, 1024)
    white, line = plot_statistics(made[0])
    assert white > 0.6 and line > 0.005


def test_spec_plots_exit_becomes_a_failure_of_that_file(tmp_path, caplog):
    cols = fits.ColDefs([fits.Column("WAVELENGTH", "10D", array=np.ones((1, 10)))])
    bad = tmp_path / "lbad01xyq_x1d.fits"
    primary = fits.PrimaryHDU(header=fits.Header({"INSTRUME": "COS"}))
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols)]).writeto(bad)
    stis_x1d(tmp_path / "obad01xyq_x1d.fits")  # another kind: not selected for COS
    before = open_figures()
    with caplog.at_level(logging.ERROR, logger="caldp.previews"):
        report = previews.make_previews("cos", "lbad01xyq", tmp_path, tmp_path / "out")
    assert list(report.failures) == ["lbad01xyq_x1d.fits"]
    assert "SEGMENT" in report.failures["lbad01xyq_x1d.fits"]
    assert report.made == []
    assert "lbad01xyq_x1d.fits" in caplog.text
    assert open_figures() == before


def test_spectral_preview_rejects_other_instruments(tmp_path):
    path = stis_x1d(tmp_path / "jabc01xyq_x1d.fits")
    fits.setval(path, "INSTRUME", value="ACS")
    with pytest.raises(spectra.SpectralPreviewError, match="ACS"):
        spectra.make_spectral_previews(path, tmp_path)


def test_cos_previews_are_byte_for_byte_those_of_spec_plots_alone(tmp_path):
    """caldp's covering fraction and memory release change nothing in the files:
    spec-plots run alone, in a fresh interpreter, writes the same bytes."""
    source = cos_dir() / "ldfd01010_x1dsum.fits.gz"
    ours = tmp_path / "ours"
    theirs = tmp_path / "theirs"
    made = spectra.make_spectral_previews(source, ours)
    script = (
        "import sys, matplotlib; matplotlib.use('Agg');"
        "from spec_plots.make_hst_spec_previews import make_hst_spec_previews as m;"
        "m(sys.argv[1], output_path=sys.argv[2], output_type=['png', 'fits'])"
    )
    subprocess.run([sys.executable, "-c", script, str(source), str(theirs)], check=True)  # noqa: S603
    assert sorted(p.name for p in theirs.iterdir()) == sorted(p.name for p in made)
    for path in made:
        assert path.read_bytes() == (theirs / path.name).read_bytes(), path.name
    module = sys.modules["spec_plots.utils.specutils_cos.plotspec"]
    assert module.calc_covering_fraction is spectra.covering_fraction


def two_plot_figure(flux_scale: float):
    """A figure like spec-plots' COS plots: two subplots, a dense blue line in each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1024 / 96, 1024 / 96), dpi=96)
    FigureCanvasAgg(fig)
    axes = np.asarray(fig.subplots(nrows=2, ncols=1))
    rng = np.random.default_rng(3)
    for i, ax in enumerate(axes):
        wave = np.linspace(1100 + 200 * i, 1300 + 200 * i, 4000)
        ax.plot(wave, flux_scale * rng.normal(1.0, 0.2 + 0.3 * i, wave.size), "b")
        ax.set_title("a title", color="red")
    return fig, axes


@pytest.mark.parametrize("optimize", [True, False])
def test_covering_fraction_is_spec_plots_own(optimize):
    """Same percentage and same figure afterwards as spec-plots' pixel loop."""
    own = sys.modules[spectra._ORIGINAL].calc_covering_fraction
    assert own is not spectra.covering_fraction
    for scale in (1.0, 0.05):
        fig_a, axes_a = two_plot_figure(scale)
        fig_b, axes_b = two_plot_figure(scale)
        for i in range(len(axes_a)):
            expected = own(fig_a, axes_a, i, optimize=optimize)
            assert spectra.covering_fraction(fig_b, axes_b, i, optimize=optimize) == expected
            assert 0.0 < expected < 100.0
            for a, b in zip(axes_a, axes_b, strict=True):
                assert (a.get_visible(), a.get_facecolor()) == (b.get_visible(), b.get_facecolor())
        fig_a.canvas.draw()
        fig_b.canvas.draw()
        assert np.array_equal(
            np.asarray(fig_a.canvas.buffer_rgba()), np.asarray(fig_b.canvas.buffer_rgba())
        )


def test_count_blue_red_on_every_kind_of_pixel():
    pixels = np.array(
        [
            [255, 255, 255],  # grey (white): neither
            [40, 40, 40],  # grey: neither
            [255, 0, 0],  # red background
            [9, 200, 0],  # red: r > 0 and no blue
            [0, 0, 200],  # blue
            [31, 119, 180],  # the default line colour: blue
            [0, 50, 0],  # green only: neither
        ],
        dtype=np.uint8,
    )
    assert spectra.count_blue_red(pixels) == (2, 2)


def test_collecting_only_new_objects_gives_the_old_ones_back():
    import gc

    assert gc.get_freeze_count() == 0
    with spectra.collecting_only_new_objects():
        assert gc.get_freeze_count() > 0
        cycle: list = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # new garbage is still collected inside
    assert gc.get_freeze_count() == 0
    gc.freeze()  # frozen by someone else: left as it is
    try:
        frozen = gc.get_freeze_count()
        with spectra.collecting_only_new_objects():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_release_memory_empties_the_math_text_cache(tmp_path):
    from matplotlib import mathtext

    spectra.make_spectral_previews(cos_dir() / "ldfd01vnq_x1d.fits.gz", tmp_path)
    assert mathtext.MathTextParser._parse_cached.cache_info().currsize == 0

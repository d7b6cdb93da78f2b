"""Image previews of ACS and WFC3 products (caldp.previews.images)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from astropy.io import fits

from caldp.previews import images
from tests.conftest import require_testdata
from tests.support.fits_images import add_star, jpeg, sky, wfc_like, write_chips


def test_stretch_is_astropys_asinh_stretch():
    from astropy.visualization import AsinhStretch

    values = np.linspace(0.0, 1.0, 10001, dtype=np.float32)
    expected = AsinhStretch(a=images.ASINH_A)(values.copy(), clip=False)
    assert np.array_equal(images.asinh_stretch(values), expected)


def test_two_chips_are_placed_as_on_the_detector(tmp_path):
    path = wfc_like(tmp_path / "jabc01xyq_flc.fits")
    made = images.make_image_previews(path, tmp_path)
    assert [p.name for p in made] == ["jabc01xyq_flc.jpg", "jabc01xyq_flc_thumb.jpg"]
    full = jpeg(made[0])
    assert full.shape == (400, 300)  # both chips, stacked
    top, bottom = full[:200], full[200:]
    # chip 1 (SCI,2, sky 300) is on top; chip 2 (SCI,1, sky 100) below
    assert np.median(top) > np.median(bottom) + 50
    thumb = jpeg(made[1])
    assert max(thumb.shape) == 128 and thumb.shape == (128, 96)
    assert np.median(thumb[:64]) > np.median(thumb[64:]) + 50


def test_rows_are_shown_top_down(tmp_path):
    image = sky((100, 100), level=10.0, noise=1.0)
    image[90:, :] = 1000.0  # the last FITS rows are the top of the picture
    full = jpeg(
        images.make_image_previews(
            write_chips(tmp_path / "x_flt.fits", [{"sci": image}]), tmp_path
        )[0]
    )
    assert full[:10].mean() > 200 and full[20:].mean() < 60


def test_scale_is_the_central_99_5_percent_of_good_pixels(tmp_path):
    values = np.arange(200 * 200, dtype=np.float32).reshape(200, 200)
    rendered = images.render_file(write_chips(tmp_path / "r_flt.fits", [{"sci": values}]))
    low, high = np.percentile(values, [0.25, 99.75])
    assert rendered.low == pytest.approx(low) and rendered.high == pytest.approx(high)
    assert rendered.pixels[-1, 0] == 0 and rendered.pixels[0, -1] == 255
    # asinh: the middle of the range is brighter than a linear mapping would make it
    assert rendered.pixels[100, 100] > 160


def test_dq_flagged_pixels_are_excluded_from_scaling_and_shown_neutral(tmp_path):
    image = sky((120, 120), seed=3)
    add_star(image, 30, 30, 3000.0)
    dq = np.zeros_like(image, dtype=np.int16)
    image[:, 60:64] = 1e6  # a hot, flagged column
    dq[:, 60:64] = 4
    image[80:84, 80:84] = -1e5  # flagged dead pixels
    dq[80:84, 80:84] = 16
    flagged = images.render_file(write_chips(tmp_path / "f_flt.fits", [{"sci": image, "dq": dq}]))
    clean_image = image.copy()
    clean_image[dq != 0] = np.nan  # the same image without those pixels at all
    clean = images.render_file(write_chips(tmp_path / "c_flt.fits", [{"sci": clean_image}]))
    assert flagged.low == pytest.approx(clean.low) and flagged.high == pytest.approx(clean.high)
    top_down_dq = dq[::-1]
    shown = flagged.pixels[top_down_dq != 0]
    assert np.all(shown == flagged.neutral)
    assert 0 < flagged.neutral < 255
    # the neutral value is the display value of the median good pixel
    good = flagged.pixels[top_down_dq == 0]
    assert abs(int(np.median(good)) - flagged.neutral) <= 2


def ring(mask: np.ndarray, width: int = 3) -> np.ndarray:
    """The pixels within ``width`` of a mask, outside it."""
    grown = mask.copy()
    for _ in range(width):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        step[:, 1:] |= grown[:, :-1]
        step[:, :-1] |= grown[:, 1:]
        grown = step
    return grown & ~mask


def assert_cores_bright(rendered: images.Rendered, cores: np.ndarray) -> None:
    """Saturated cores (FITS orientation) are white and brighter than their surroundings."""
    shown = rendered.pixels[::-1]
    assert np.all(shown[cores] == 255)
    assert shown[ring(cores)].mean() < 250
    assert shown[cores].mean() > shown[ring(cores)].mean() + 5


@pytest.mark.parametrize("instrument", ["ACS", "WFC3"])
@pytest.mark.parametrize("bit", [256, 2048])
def test_saturated_star_cores_are_bright_and_not_scaled(tmp_path, instrument, bit):
    """A star field with saturated cores, flagged as calacs/calwf3 flag them."""
    image = sky((120, 120), seed=4)
    dq = np.zeros_like(image, dtype=np.int16)
    for y, x in ((30, 30), (80, 90), (95, 25)):
        add_star(image, y, x, 2e4, sigma=3.0)
    cores = image > 1.5e4
    image[cores] = 1.5e4  # clipped where the detector saturated
    dq[cores] = bit
    dq[cores & (np.arange(120) % 2 == 0)] |= 4  # saturated pixels can carry other flags too
    dq[50:53, 60:63] = 4  # a genuinely bad patch
    path = write_chips(
        tmp_path / "s_flt.fits", [{"sci": image, "dq": dq}], {"INSTRUME": instrument}
    )
    rendered = images.render_file(path)
    assert cores.sum() > 20
    assert_cores_bright(rendered, cores)
    assert np.all(rendered.pixels[::-1][50:53, 60:63] == rendered.neutral)
    # the saturated pixels are left out of the scaling, like every flagged pixel
    without = image.copy()
    without[dq != 0] = np.nan
    clean = images.render_file(write_chips(tmp_path / "c_flt.fits", [{"sci": without}]))
    assert rendered.low == pytest.approx(clean.low) and rendered.high == pytest.approx(clean.high)


def test_saturation_bits_are_the_instruments(tmp_path):
    """Other instruments' DQ bits mean other things: without a known INSTRUME, neutral."""
    image = sky((60, 60), seed=4)
    dq = np.zeros_like(image, dtype=np.int16)
    image[20:25, 20:25] = 9e4
    dq[20:25, 20:25] = 256
    rendered = images.render_file(write_chips(tmp_path / "s_flt.fits", [{"sci": image, "dq": dq}]))
    assert np.all(rendered.pixels[::-1][20:25, 20:25] == rendered.neutral)
    assert rendered.high < 1000  # excluded from the scaling


def test_real_star_field_keeps_its_saturated_cores(tmp_path):
    """47 Tuc on ACS/HRC (j8bt05njq): the pixels the A-to-D converter saturated (raw
    65535, which calacs flags 2048) are shown white, brighter than around them."""
    raw = require_testdata() / "acs" / "j8bt05njq_raw.fits"
    with fits.open(raw) as hdul:
        counts = np.asarray(hdul["SCI"].data)
        sci_header = hdul["SCI"].header.copy()
        primary = hdul[0].header.copy()
    cores = counts >= 65535
    dq = np.where(cores, 2048, 0).astype(np.int16)
    path = tmp_path / "j8bt05njq_flt.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(header=primary),
            fits.ImageHDU(counts.astype(np.float32), sci_header),
            fits.ImageHDU(dq, fits.Header({"EXTNAME": "DQ", "EXTVER": 1})),
        ]
    ).writeto(path)
    rendered = images.render_file(path)
    assert cores.sum() == 380
    assert_cores_bright(rendered, cores)
    assert rendered.neutral < 60  # a dark sky: a neutral core would be a hole in a star


def test_nan_constant_and_empty_images(tmp_path, caplog):
    nan_image = sky((50, 50))
    nan_image[10:20, :] = np.nan
    rendered = images.render_file(write_chips(tmp_path / "n_flt.fits", [{"sci": nan_image}]))
    assert np.isfinite(rendered.low) and np.isfinite(rendered.high)
    assert np.all(rendered.pixels[::-1][10:20] == rendered.neutral)

    flat = np.full((40, 70), 7.0)
    made = images.make_image_previews(
        write_chips(tmp_path / "k_flt.fits", [{"sci": flat}]), tmp_path
    )
    assert jpeg(made[0]).shape == (40, 70) and jpeg(made[0]).max() <= 2

    with caplog.at_level(logging.WARNING, logger="caldp.previews"):
        empty = np.full((30, 30), np.nan)
        made = images.make_image_previews(
            write_chips(tmp_path / "e_flt.fits", [{"sci": empty}]), tmp_path
        )
    assert jpeg(made[0]).std() < 1
    assert "e_flt.fits: no valid pixel" in caplog.text


def test_ima_shows_its_first_read_only(tmp_path):
    reads = [{"sci": np.full((64, 64), 100.0 * (i + 1)), "ccdchip": 1} for i in range(4)]
    reads[0]["sci"][::8, ::8] = 5000.0
    path = write_chips(tmp_path / "iabc01xyq_ima.fits", reads, {"INSTRUME": "WFC3"})
    rendered = images.render_file(path)
    assert rendered.pixels.shape == (64, 64)
    assert rendered.high == pytest.approx(5000.0)
    # WFC3/IR reads carry SAMPNUM and may have no CCDCHIP at all
    for number, read in enumerate(reads):
        del read["ccdchip"]
        read["header"] = {"SAMPNUM": len(reads) - number - 1}
    path = write_chips(tmp_path / "iabc01xzq_ima.fits", reads, {"INSTRUME": "WFC3"})
    assert images.render_file(path).pixels.shape == (64, 64)


def test_extensions_without_ccdchip_are_stacked_in_order(tmp_path):
    chips = [{"sci": np.full((30, 40), 10.0 * (i + 1))} for i in range(2)]
    rendered = images.render_file(write_chips(tmp_path / "x_flt.fits", chips))
    assert rendered.pixels.shape == (60, 40)
    assert rendered.pixels[:30].mean() > rendered.pixels[30:].mean()  # SCI,2 on top


def test_drizzle_zero_weight_is_no_data(tmp_path):
    image = sky((80, 80), seed=5)
    wht = np.ones_like(image)
    image[:, :20] = -500.0  # outside the footprint
    wht[:, :20] = 0.0
    rendered = images.render_file(
        write_chips(tmp_path / "d_drz.fits", [{"sci": image, "wht": wht}])
    )
    assert rendered.low > 50
    assert np.all(rendered.pixels[:, :20] == rendered.neutral)


def test_large_images_use_an_even_sample_for_the_percentiles(tmp_path, monkeypatch):
    image = sky((300, 256), level=50.0, noise=10.0, seed=6)
    exact = images.render_file(write_chips(tmp_path / "a_flt.fits", [{"sci": image}]))
    monkeypatch.setattr(images, "MAX_SAMPLES", 5000)
    sampled = images.render_file(tmp_path / "a_flt.fits")
    assert images.sample_step(300 * 256, [256]) % 2 == 1  # shares no factor with the width
    assert sampled.low == pytest.approx(exact.low, abs=3.0)
    assert sampled.high == pytest.approx(exact.high, abs=3.0)
    assert np.abs(sampled.pixels.astype(int) - exact.pixels).mean() < 3


def test_real_acs_hrc_raw_preview(tmp_path):
    raw = require_testdata() / "acs" / "j8bt05njq_raw.fits"
    made = images.make_image_previews(raw, tmp_path)
    full, thumb = jpeg(made[0]), jpeg(made[1])
    assert full.shape == (1044, 1062) and thumb.shape == (126, 128)
    # 47 Tuc: a dark sky with many stars; reference statistics of the preview
    hist = np.histogram(full, bins=[0, 16, 64, 128, 192, 256])[0] / full.size
    assert 0.80 < hist[0] < 0.93  # sky
    assert 0.05 < hist[1] < 0.15  # star wings
    assert 0.003 < hist[4] < 0.02  # star cores
    assert 6 < full.mean() < 16 and 6 < thumb.mean() < 16

"""Image and colour previews, product selection and the filter table (caldp.previews)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from caldp import previews
from caldp.previews import colour, filters, images
from tests.conftest import require_testdata


def real_data() -> Path:
    return require_testdata()


def jpeg(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(int)


def write_chips(path: Path, chips: list[dict], primary: dict | None = None) -> Path:
    """A multi-extension FITS file: chips = [{'sci': arr, 'dq': arr|None, 'ccdchip': n, ...}]."""
    hdus = [fits.PrimaryHDU(header=fits.Header(primary or {}))]
    for extver, chip in enumerate(chips, start=1):
        head = {"EXTNAME": "SCI", "EXTVER": extver, **chip.get("header", {})}
        if chip.get("ccdchip") is not None:
            head["CCDCHIP"] = chip["ccdchip"]
        hdus.append(fits.ImageHDU(chip["sci"].astype(np.float32), fits.Header(head)))
        if chip.get("dq") is not None:
            dq_head = fits.Header({"EXTNAME": "DQ", "EXTVER": extver})
            hdus.append(fits.ImageHDU(chip["dq"].astype(np.int16), dq_head))
        if chip.get("wht") is not None:
            wht_head = fits.Header({"EXTNAME": "WHT", "EXTVER": extver})
            hdus.append(fits.ImageHDU(chip["wht"].astype(np.float32), wht_head))
    fits.HDUList(hdus).writeto(path)
    return path


def sky(shape, level=100.0, noise=5.0, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(level, noise, shape).astype(np.float32)


def add_star(image: np.ndarray, y: int, x: int, amplitude: float, sigma: float = 2.0) -> None:
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    image += (amplitude * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))).astype(
        np.float32
    )


def wfc_like(path: Path, ny: int = 200, nx: int = 300) -> Path:
    """Two chips as in an ACS/WFC flc: SCI,1 is chip 2 (bottom), SCI,2 chip 1 (top, brighter)."""
    chip2 = sky((ny, nx), level=100.0, seed=1)
    chip1 = sky((ny, nx), level=300.0, seed=2)
    for image in (chip1, chip2):
        add_star(image, ny // 2, nx // 2, 5e4)
    dq = np.zeros((ny, nx), np.int16)
    return write_chips(
        path,
        [
            {"sci": chip2, "dq": dq, "ccdchip": 2},
            {"sci": chip1, "dq": dq, "ccdchip": 1},
        ],
        {"INSTRUME": "ACS", "DETECTOR": "WFC"},
    )


# ---------------------------------------------------------------- image previews


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
    raw = real_data() / "acs" / "j8bt05njq_raw.fits"
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
    raw = real_data() / "acs" / "j8bt05njq_raw.fits"
    made = images.make_image_previews(raw, tmp_path)
    full, thumb = jpeg(made[0]), jpeg(made[1])
    assert full.shape == (1044, 1062) and thumb.shape == (126, 128)
    # 47 Tuc: a dark sky with many stars; reference statistics of the preview
    hist = np.histogram(full, bins=[0, 16, 64, 128, 192, 256])[0] / full.size
    assert 0.80 < hist[0] < 0.93  # sky
    assert 0.05 < hist[1] < 0.15  # star wings
    assert 0.003 < hist[4] < 0.02  # star cores
    assert 6 < full.mean() < 16 and 6 < thumb.mean() < 16


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


# ---------------------------------------------------------------- colour previews


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


# ---------------------------------------------------------------- filter table


def tpn_values(name: str, keyword: str) -> set[str]:
    """Allowed values of a keyword in a CRDS .tpn file of the installed crds package."""
    import crds

    tpn = Path(crds.__file__).parent / "hst" / "tpns" / name
    text = tpn.read_text().replace("\\\n", "")
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == keyword:
            return {v.strip() for v in "".join(fields[4:]).split(",") if v.strip()}
    raise AssertionError(f"{keyword} not in {tpn}")


# Names in CRDS rules that are not ACS filters of the Instrument Handbook (no flight use).
NOT_IN_HANDBOOK = {"F410W", "F220M", "FR555N"}


def test_every_acs_filter_of_crds_has_a_pivot():
    allowed = tpn_values("acs_pfl.tpn", "FILTER1") | tpn_values("acs_pfl.tpn", "FILTER2")
    assert {"F435W", "F814W", "F115LP", "FR656N", "POL60V"} <= allowed
    wanted = {f for f in allowed if filters.is_bandpass(f)} - NOT_IN_HANDBOOK
    missing = sorted(f for f in wanted if filters.pivot_wavelength("ACS", "WFC", f) is None)
    assert missing == []


def test_every_synphot_filter_of_acs_and_wfc3_has_a_pivot():
    mapping = real_data() / "crds-cache" / "mappings" / "hst" / "hst_synphot_thruput_0004.rmap"
    text = mapping.read_text()
    components = set(re.findall(r"'((?:ACS|WFC3_UVIS|WFC3_IR)_[A-Z0-9_]+)'", text))
    checked = 0
    for component in components:
        instrument, _, rest = component.partition("_")
        if instrument == "WFC3":
            detector, _, name = rest.partition("_")
        elif rest in ("POL_UV", "POL_V"):
            detector, name = "WFC", rest
        else:
            detector, name = "WFC", rest.split("_")[0]
        # filters, ramps, grisms, prisms, polarizers; not detectors, apertures, mirrors,
        # windows, blocking filters, nor the per-chip variants (F200LPF1) of WFC3/UVIS
        if not re.fullmatch(r"F[QR]?\d{3,4}[A-Z]{1,2}|G\d{3,4}L?|PR\d{3}L|POL_UV|POL_V", name):
            continue
        if name in NOT_IN_HANDBOOK:
            continue
        checked += 1
        assert filters.pivot_wavelength(instrument, detector, name) is not None, component
    assert checked > 120


def test_pivot_lookup_rules():
    wfc = [filters.pivot_wavelength("ACS", "WFC", f) for f in ("F435W", "F606W", "F814W")]
    assert wfc == sorted(wfc) and 4000 < wfc[0] < 4500 and 7900 < wfc[2] < 8200
    assert filters.pivot_wavelength("ACS", "WFC", "F220W") == pytest.approx(2255.4)  # HRC value
    assert filters.pivot_wavelength("wfc3", "ir", "f160w") == pytest.approx(15405.2)
    assert filters.pivot_wavelength("WFC3", "UVIS", "F160W") == pytest.approx(15405.2)
    assert filters.filter_combination_pivot("acs", "wfc", "f606w-pol60v") == pytest.approx(5917.7)
    assert filters.filter_combination_pivot("acs", "wfc", "pol0v") == pytest.approx(6910.0)
    assert filters.filter_combination_pivot("acs", "wfc", "clear1l-f814w") == pytest.approx(8059.8)
    assert filters.filter_combination_pivot("acs", "wfc", "f999w") is None


def test_unreadable_association_table_falls_back_to_headers(tmp_path, caplog):
    (tmp_path / "j8cb01010_asn.fits").write_bytes(b"garbage" * 500)
    touch_fits(tmp_path / "j8cb01u2q_flt.fits", {"ASN_ID": "J8CB01010"})
    touch_fits(tmp_path / "j8cb01u4q_flt.fits", {"ASN_ID": "J8CB01020"})
    with caplog.at_level(logging.WARNING, logger="caldp.previews"):
        selected = previews.select_products("acs", tmp_path, "j8cb01010")
    assert names(selected) == ["j8cb01u2q_flt.fits"]
    assert "cannot read the association table j8cb01010_asn.fits" in caplog.text

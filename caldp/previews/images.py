"""Image previews of ACS, WFC3 and HAP (SVM/MVM) products.

``<base>.jpg`` at full resolution and ``<base>_thumb.jpg`` (128 px, MVM 512 px
on the longer side), both derived from one reading of the file:

* every SCI extension of a multi-chip file (ACS/WFC, WFC3/UVIS) is placed as on
  the detector: chip 1 above chip 2 (extensions sorted by ``CCDCHIP``); the
  reads of a WFC3/IR ``ima`` file share one chip, so only its first (final) read
  is shown;
* saturated pixels (the DQ bits the instrument's handler names as saturation,
  e.g. full well and A-to-D for ACS and WFC3) are real light: they are
  excluded from the scaling and shown white, so that bright stars keep their
  cores;
* other pixels flagged in DQ, non-finite pixels and drizzled pixels of zero
  weight are excluded from the scaling and shown neutral (the display value of
  the median good pixel);
* the scale keeps the central 99.5 % of the good pixels (the limits of
  ``astropy.visualization.PercentileInterval(99.5)``; beyond 4 million good
  pixels they are estimated from 4 million evenly spaced ones) and applies an
  asinh stretch (``AsinhStretch``); a constant image comes out black, an image
  with no good pixel uniformly neutral.

The data are processed in row blocks, so the memory needed beyond the file's
own arrays is one byte per pixel for the classification, one byte per pixel for
the output, and at most 4 million floats for the percentiles.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caldp import instruments

log = logging.getLogger("caldp.previews")

PERCENTILE = 99.5  # central fraction of the good pixels mapped onto the display range
ASINH_A = 0.1  # astropy AsinhStretch parameter
ROWS_PER_BLOCK = 512
MAX_SAMPLES = 4_000_000  # good pixels used for the percentiles (evenly spaced above this)
JPEG_QUALITY = 85

GOOD, INVALID, SATURATED = 0, 1, 2


@dataclass
class Chip:
    """One image extension of a file, with its quality arrays (rows bottom-up, as in FITS)."""

    sci: Any
    dq: Any = None
    weight: Any = None
    ccdchip: int | None = None
    extver: int = 1
    saturation_dq: int = 0  # DQ bits that mean saturated (shown white)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.sci.shape)  # type: ignore[return-value]


@dataclass
class Rendered:
    """A display image: 8-bit, rows top-down, ready for Pillow."""

    pixels: np.ndarray
    neutral: int
    low: float
    high: float
    good_pixels: int
    codes: np.ndarray | None = None  # GOOD/INVALID/SATURATED per pixel (top-down), if kept


def base_name(path: Path) -> str:
    """The file name without ``.fits`` / ``.fits.gz``."""
    name = path.name
    for ext in (".fits.gz", ".fits", ".fit", ".fts"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def _extname(hdu: Any) -> str:
    return str(hdu.header.get("EXTNAME", "")).strip().upper()


def _is_image(hdu: Any) -> bool:
    return hdu.is_image and hdu.header.get("NAXIS", 0) == 2


def find_chips(hdul: Any) -> list[Chip]:
    """The image extensions to show, with their DQ and drizzle-weight arrays."""
    by_name: dict[tuple[str, int], Any] = {}
    for hdu in hdul[1:]:
        by_name.setdefault((_extname(hdu), int(hdu.header.get("EXTVER", 1))), hdu)
    sci_hdus = [hdu for hdu in hdul[1:] if _extname(hdu) == "SCI" and _is_image(hdu)]
    if not sci_hdus:
        sci_hdus = [hdu for hdu in hdul if _is_image(hdu)][:1]
    if not sci_hdus:
        raise ValueError("no 2-D image in the file")
    primary_chip = hdul[0].header.get("CCDCHIP")
    saturation = instruments.saturation_dq(str(hdul[0].header.get("INSTRUME", "")))
    chips: list[Chip] = []
    seen_chips: set[Any] = set()
    for hdu in sci_hdus:
        ccdchip = hdu.header.get("CCDCHIP", primary_chip)
        extver = int(hdu.header.get("EXTVER", 1))
        if "SAMPNUM" in hdu.header:  # a read of a MULTIACCUM (ima) file: all on one chip
            key: Any = ("read", ccdchip)
        else:
            key = ccdchip if ccdchip is not None else ("extension", extver)
        if key in seen_chips:  # further reads of the same chip (ima): keep the first, final one
            continue
        seen_chips.add(key)
        dq = _companion(by_name.get(("DQ", extver)), hdu)
        weight = _companion(by_name.get(("WHT", extver)), hdu)
        chips.append(Chip(hdu.data, dq, weight, ccdchip, extver, saturation))
    return chips


def _companion(hdu: Any, sci_hdu: Any) -> Any:
    """A DQ/WHT array of the same shape as the science array, or None (e.g. a constant DQ)."""
    if hdu is None or not _is_image(hdu):
        return None
    data = hdu.data
    if data is None or data.shape != sci_hdu.data.shape:
        return None
    return data


def layout(chips: list[Chip]) -> tuple[int, int, list[Chip], list[int]]:
    """Mosaic size and each chip's bottom row, chip 1 on top (highest CCDCHIP at the bottom)."""

    def order(chip: Chip) -> tuple[int, int]:
        number = chip.ccdchip if isinstance(chip.ccdchip, int) else 0
        return (-number, chip.extver)

    ordered = sorted(chips, key=order) if len(chips) > 1 else list(chips)
    bottoms, y = [], 0
    for chip in ordered:
        bottoms.append(y)
        y += chip.shape[0]
    width = max(chip.shape[1] for chip in ordered)
    return y, width, ordered, bottoms


def _classify(chip: Chip, rows: slice, block: np.ndarray) -> np.ndarray:
    """GOOD / INVALID / SATURATED for one block of rows (block = native float32 copy)."""
    finite = np.isfinite(block)
    codes = np.where(finite, GOOD, INVALID).astype(np.uint8)
    if chip.dq is not None:
        dq = np.asarray(chip.dq[rows])
        codes[dq != 0] = INVALID
        if chip.saturation_dq:
            codes[(dq & chip.saturation_dq) != 0] = SATURATED
    if chip.weight is not None:
        codes[~(np.asarray(chip.weight[rows]) > 0)] = INVALID
    return codes


def sample_step(total: int, widths: list[int]) -> int:
    """Take every ``step``-th good pixel for the percentiles: all of them up to
    :data:`MAX_SAMPLES`, otherwise an evenly spaced subset of that size, with a
    step sharing no factor with the row widths so that it does not follow columns."""
    step = max(1, -(-total // MAX_SAMPLES))
    while step > 1 and any(math.gcd(step, w) != 1 for w in widths):
        step += 1
    return step


def _blocks(nrows: int):
    for start in range(0, nrows, ROWS_PER_BLOCK):
        yield slice(start, min(start + ROWS_PER_BLOCK, nrows))


def asinh_stretch(values: np.ndarray) -> np.ndarray:
    """astropy's ``AsinhStretch(a=ASINH_A)``, in place: arcsinh(x / a) / arcsinh(1 / a).

    Written out because importing ``astropy.visualization`` imports matplotlib.
    """
    np.true_divide(values, ASINH_A, out=values)
    np.arcsinh(values, out=values)
    np.true_divide(values, np.arcsinh(1.0 / ASINH_A), out=values)
    return values


def render(chips: list[Chip], keep_codes: bool = False) -> Rendered:
    """Scale and stretch the chips into one 8-bit mosaic (rows top-down)."""
    height, width, ordered, bottoms = layout(chips)
    total = sum(c.shape[0] * c.shape[1] for c in ordered)
    step = sample_step(total, [c.shape[1] for c in ordered])
    # Pass 1: classify every pixel and gather (every step-th of) the good values.
    codes = np.full((height, width), INVALID, dtype=np.uint8)  # bottom-up, like FITS
    sample = np.empty(-(-total // step) + 1, dtype=np.float32)
    nsample = ngood = phase = 0
    for chip, y0 in zip(ordered, bottoms, strict=True):
        nrows, ncols = chip.shape
        for rows in _blocks(nrows):
            block = np.asarray(chip.sci[rows], dtype=np.float32)
            block_codes = _classify(chip, rows, block)
            codes[y0 + rows.start : y0 + rows.stop, :ncols] = block_codes
            values = block[block_codes == GOOD]
            ngood += values.size
            taken = values[phase::step]
            sample[nsample : nsample + taken.size] = taken
            nsample += taken.size
            phase = (phase - values.size) % step
    if nsample:
        cut = (100.0 - PERCENTILE) / 2.0
        low, median, high = (
            float(v)
            for v in np.percentile(sample[:nsample], [cut, 50.0, 100.0 - cut], overwrite_input=True)
        )
    else:
        low, median, high = 0.0, 0.0, 1.0
    del sample
    span = high - low if high > low else 1.0

    def display(block: np.ndarray) -> np.ndarray:
        block -= low
        block *= 1.0 / span
        np.clip(block, 0.0, 1.0, out=block)
        asinh_stretch(block)
        block *= 255.0
        block += 0.5
        with np.errstate(invalid="ignore"):  # non-finite pixels are overwritten afterwards
            return block.astype(np.uint8)

    neutral = int(display(np.array([median], dtype=np.float32))[0]) if ngood else 0
    # Pass 2: the display values, written top-down.
    pixels = np.full((height, width), neutral, dtype=np.uint8)
    flipped = pixels[::-1]
    for chip, y0 in zip(ordered, bottoms, strict=True):
        nrows, ncols = chip.shape
        for rows in _blocks(nrows):
            block_codes = codes[y0 + rows.start : y0 + rows.stop, :ncols]
            out = display(np.array(chip.sci[rows], dtype=np.float32))
            out[block_codes == INVALID] = neutral
            out[block_codes == SATURATED] = 255
            flipped[y0 + rows.start : y0 + rows.stop, :ncols] = out
    return Rendered(
        pixels=pixels,
        neutral=neutral,
        low=low,
        high=high,
        good_pixels=ngood,
        codes=np.ascontiguousarray(codes[::-1]) if keep_codes else None,
    )


def render_file(path: Path, keep_codes: bool = False) -> Rendered:
    """Open the file once and render its image mosaic."""
    from astropy.io import fits

    with fits.open(path) as hdul:  # memory-mapped where the data are not scaled
        rendered = render(find_chips(hdul), keep_codes=keep_codes)
    if not rendered.good_pixels:
        log.warning("%s: no valid pixel: the preview is uniformly neutral", path.name)
    return rendered


def _save(image: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        image.save(tmp, format="JPEG", quality=JPEG_QUALITY)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_full_and_thumb(pixels: np.ndarray, full: Path, thumb: Path, thumb_size: int) -> None:
    """Write the full-resolution JPEG and a thumbnail (longer side ``thumb_size``) of it."""
    from PIL import Image

    image = Image.fromarray(pixels)
    _save(image, full)
    # in place: Pillow replaces its image, the array is not modified
    image.thumbnail((thumb_size, thumb_size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    _save(image, thumb)


def make_image_previews(path: Path, out_dir: Path, thumb_size: int = 128) -> list[Path]:
    """Write ``<base>.jpg`` and ``<base>_thumb.jpg`` for one image product; return their paths."""
    rendered = render_file(path)
    base = base_name(path)
    full, thumb = out_dir / f"{base}.jpg", out_dir / f"{base}_thumb.jpg"
    save_full_and_thumb(rendered.pixels, full, thumb, thumb_size)
    return [full, thumb]

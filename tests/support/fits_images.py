"""Made-up FITS images for the preview tests: sky with noise and stars, chips laid out
as in an ACS/WFC product, and the JPEG a preview wrote, as numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits


def jpeg(path: Path) -> np.ndarray:
    """The pixels of a JPEG, as ints."""
    from PIL import Image

    return np.asarray(Image.open(path)).astype(int)


def rgb(path: Path) -> np.ndarray:
    """The pixels of a PNG or JPEG, as RGB ints."""
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


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

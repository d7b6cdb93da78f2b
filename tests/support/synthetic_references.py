"""SYNTHETIC, format-valid ACS CCD reference files, for running the real calacs.e.

The test CRDS cache holds the rules but not the large reference files.  For a
raw whose primary header names its references (CRDS bestrefs has run), this
writes, under the names CRDS assigned, files that calacs.e reads as real ones:
the CCD, overscan and bad-pixel tables, flat bias, dark and flat images, a
photometry table, and a full-well saturation image (``SATUFILE``, which calacs
10.5 wants and the 2019 rules do not assign).  Neutral values: the products
are not science, the switches are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

PEDIGREE = "INFLIGHT 01/01/2002 01/01/2002"
DESCRIP = "SYNTHETIC reference file made for tests; not a calibration"
SATUFILE = "synthetic_satu.fits"
TRIMMED = 1024  # the HRC's and each WFC amplifier quadrant's side, without overscan


def _name(header: fits.Header, keyword: str) -> str:
    return str(header[keyword]).split("$")[-1]


def _primary(raw: fits.Header, filetype: str, **cards) -> fits.PrimaryHDU:
    hdu = fits.PrimaryHDU()
    h = hdu.header
    h["INSTRUME"] = "ACS"
    h["DETECTOR"] = raw["DETECTOR"]
    h["FILETYPE"] = filetype
    h["CCDAMP"] = raw["CCDAMP"]
    h["CCDGAIN"] = float(raw["CCDGAIN"])
    h["USEAFTER"] = "Jan 01 2002 00:00:00"
    h["PEDIGREE"] = PEDIGREE
    h["DESCRIP"] = DESCRIP
    for key, value in cards.items():
        h[key] = value
    return hdu


def _table(path: Path, primary: fits.PrimaryHDU, columns: list[fits.Column]) -> None:
    columns = columns + [
        fits.Column("PEDIGREE", "30A", array=[PEDIGREE]),
        fits.Column("DESCRIP", "67A", array=[DESCRIP]),
    ]
    fits.HDUList([primary, fits.BinTableHDU.from_columns(columns)]).writeto(path)


def _image(path: Path, primary: fits.PrimaryHDU, shape, value: float, ltv=(0.0, 0.0)) -> None:
    primary.header["NEXTEND"] = 3
    hdus: list = [primary]
    arrays = (
        ("SCI", np.full(shape, value, np.float32)),
        ("ERR", np.zeros(shape, np.float32)),
        ("DQ", np.zeros(shape, np.int16)),
    )
    for extname, data in arrays:
        ext = fits.ImageHDU(data, name=extname)
        ext.header["EXTVER"] = 1
        ext.header["CCDCHIP"] = 1
        ext.header["LTV1"], ext.header["LTV2"] = ltv
        ext.header["LTM1_1"] = ext.header["LTM2_2"] = 1.0
        hdus.append(ext)
    fits.HDUList(hdus).writeto(path)


def make_acs_references(raw_path: Path, folder: Path) -> list[Path]:
    """Write the references ``raw_path`` names (one-chip, full-frame, unbinned ACS CCD
    exposure: the HRC) into ``folder``; name ``SATUFILE`` in the raw and set
    ``PCTECORR=OMIT`` (no CTE tables).  Returns the files written."""
    raw = fits.getheader(raw_path, 0)
    sci = fits.getheader(raw_path, 1)
    nx, ny = sci["NAXIS1"], sci["NAXIS2"]
    ltv = (float(sci.get("LTV1", 0.0)), float(sci.get("LTV2", 0.0)))
    trim_x1 = int(ltv[0])
    amp, gain = raw["CCDAMP"], float(raw["CCDGAIN"])
    col = fits.Column

    def path(keyword: str) -> Path:
        return folder / _name(raw, keyword)

    _table(path("CCDTAB"), _primary(raw, "CCD PARAMETERS"), [
        col("CCDAMP", "4A", array=[amp]), col("CCDCHIP", "J", array=[1]),
        col("CCDGAIN", "E", array=[gain]),
        col("BINAXIS1", "J", array=[1]), col("BINAXIS2", "J", array=[1]),
        *[col(f"CCDOFST{a}", "J", array=[raw[f"CCDOFST{a}"]]) for a in "ABCD"],
        *[col(f"CCDBIAS{a}", "E", array=[2100.0]) for a in "ABCD"],
        *[col(f"ATODGN{a}", "E", array=[gain]) for a in "ABCD"],
        *[col(f"READNSE{a}", "E", array=[4.7]) for a in "ABCD"],
        col("AMPX", "J", array=[nx]), col("AMPY", "J", array=[ny]),
        col("ATODSAT", "J", array=[65535]), col("SATURATE", "E", array=[140000.0]),
        col("OVRHFLS", "E", array=[0.0]), col("OVRHUFLS", "E", array=[0.0]),
    ])  # fmt: skip
    # the physical overscan columns before and after the imaging area, virtual rows on top
    _table(path("OSCNTAB"), _primary(raw, "CCD OVERSCAN TABLE"), [
        col("CCDAMP", "4A", array=[amp]), col("CCDCHIP", "J", array=[1]),
        col("BINX", "J", array=[1]), col("BINY", "J", array=[1]),
        col("NX", "J", array=[nx]), col("NY", "J", array=[ny]),
        col("TRIMX1", "J", array=[trim_x1]), col("TRIMX2", "J", array=[nx - TRIMMED - trim_x1]),
        col("TRIMY1", "J", array=[0]), col("TRIMY2", "J", array=[ny - TRIMMED]),
        *[col(name, "J", array=[0]) for name in ("VX1", "VX2", "VY1", "VY2")],
        col("BIASSECTA1", "J", array=[2]), col("BIASSECTA2", "J", array=[trim_x1 - 2]),
        col("BIASSECTB1", "J", array=[0]), col("BIASSECTB2", "J", array=[0]),
    ])  # fmt: skip
    _table(path("BPIXTAB"), _primary(raw, "BAD PIXELS"), [
        col("CCDAMP", "4A", array=[amp]), col("CCDCHIP", "J", array=[1]),
        col("CCDGAIN", "E", array=[gain]), col("PIX1", "J", array=[10]),
        col("PIX2", "J", array=[10]), col("LENGTH", "J", array=[1]),
        col("AXIS", "J", array=[1]), col("VALUE", "J", array=[4]),
    ])  # fmt: skip
    # bias and saturation before trimming (the raw's geometry), dark and flat after
    _image(path("BIASFILE"), _primary(raw, "BIAS"), (ny, nx), 0.0, ltv)
    _image(folder / SATUFILE, _primary(raw, "SATURATION"), (ny, nx), 1.0e9, ltv)
    _image(path("DARKFILE"), _primary(raw, "DARK"), (TRIMMED, TRIMMED), 0.0)
    _image(path("PFLTFILE"), _primary(raw, "PIXEL-TO-PIXEL FLAT"), (TRIMMED, TRIMMED), 1.0)

    # photometry: one row per quantity for this mode, parameterized by the date (MJD#)
    obsmode = f"acs,{raw['DETECTOR'].lower()},{raw['FILTER1'].lower()},mjd#"
    primary = _primary(raw, "PHOTOMETRY", PARNUM=1, PHOTZPT=-21.1, NEXTEND=3)
    hdus: list = [primary]
    for quantity, value in (("PHOTFLAM", 1.0e-19), ("PHOTPLAM", 5000.0), ("PHOTBW", 300.0)):
        hdus.append(fits.BinTableHDU.from_columns([
            col("OBSMODE", "40A", array=[obsmode]), col("DATACOL", "12A", array=[f"{quantity}1"]),
            col(quantity, "D", array=[value]), col(f"{quantity}1", "2D", array=[[value, value]]),
            col("NELEM1", "J", array=[2]), col("PAR1NAMES", "8A", array=["MJD#"]),
            col("PAR1VALUES", "2D", array=[[50000.0, 70000.0]]),
            col("PEDIGREE", "30A", array=[PEDIGREE]), col("DESCRIP", "67A", array=[DESCRIP]),
        ], name=quantity))  # fmt: skip
    fits.HDUList(hdus).writeto(path("IMPHTTAB"))

    with fits.open(raw_path, mode="update") as hdul:
        hdul[0].header["SATUFILE"] = f"jref${SATUFILE}"
        hdul[0].header["PCTECORR"] = "OMIT"
    keywords = ("CCDTAB", "OSCNTAB", "BPIXTAB", "BIASFILE", "DARKFILE", "PFLTFILE", "IMPHTTAB")
    return sorted([path(k) for k in keywords] + [folder / SATUFILE])

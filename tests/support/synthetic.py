"""SYNTHETIC input data for tests: small, valid, made-up HST inputs.

Nothing written here is a real observation. Every FITS file carries a HISTORY
line saying so (``SYNTHETIC_HISTORY``). The headers carry the keywords, with
realistic values, that CRDS needs to select reference files for the instrument
(checked against the real rules of context ``hst_0729.pmap`` by
``tests/test_synthetic.py``), and that the calibration stand-ins in
``tests/support/standins`` read. Pixel arrays are tiny (64x64 per chip by default) so
that tests stay fast.

Each ``make_*`` function writes into ``folder`` (created if needed) and returns
the paths it wrote, the association table or poller file first.

* :func:`make_acs_association`: ``<asn>_asn.fits`` + ACS/WFC two-chip raws.
* :func:`make_acs_raw`: one ACS raw (WFC two chips, or HRC one chip).
* :func:`make_wfc3_association`: ``<asn>_asn.fits`` + WFC3/UVIS two-chip raws.
* :func:`make_wfc3_raw`: one WFC3 raw, UVIS (two chips) or IR (NSAMP reads).
* :func:`make_stis_raw`: STIS CCD raw, optionally with ``_wav`` and ``_epc``.
* :func:`make_stis_wav_only`: only a STIS ``_wav`` file (no raw).
* :func:`make_cos_association`: COS asn + ``_rawtag_a`` + ``_spt`` per member.
* :func:`make_svm_inputs`: ``<ds>_input.out`` poller file + ACS/WFC FLC files.
* :func:`make_mvm_inputs`: ``<skycell>_input.out`` + FLC files of two visits.
* :func:`make_dataset`: any of the above, chosen from a dataset name.
* :func:`make_cal_env`: ``<ds>_cal_env.txt``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SYNTHETIC_HISTORY = "SYNTHETIC test data (caldp tests/support), not an HST observation"

DEFAULT_SHAPE = (64, 64)

# (keyword, value, comment); value None means "leave out".
Card = tuple[str, Any, str]


# ---------------------------------------------------------------------------
# small helpers


def _seed(name: str) -> int:
    return zlib.crc32(name.encode("ascii"))


def _header(cards: Iterable[Card]) -> Any:
    from astropy.io import fits

    header = fits.Header()
    for key, value, comment in cards:
        if value is not None:
            header[key] = (value, comment)
    return header


def _mark_synthetic(header: Any) -> None:
    header.add_history(SYNTHETIC_HISTORY)


def _mjd(date_obs: str, time_obs: str) -> float:
    from datetime import datetime

    moment = datetime.fromisoformat(f"{date_obs}T{time_obs}")
    epoch = datetime(1858, 11, 17)
    return round((moment - epoch).total_seconds() / 86400.0, 8)


def _sky_counts(shape: tuple[int, int], seed: int, bias: float = 2100.0, n_stars: int = 6) -> Any:
    """A uint16 raw-like image: bias + sky + a few Gaussian stars + noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    image = np.full(shape, bias + 40.0)
    for _ in range(n_stars):
        x0, y0 = rng.uniform(4, nx - 4), rng.uniform(4, ny - 4)
        flux = rng.uniform(500.0, 8000.0)
        image += flux * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.3**2))
    image += rng.normal(0.0, 5.0, shape)
    return np.clip(image, 0, 65535).astype(np.uint16)


def _wcs_cards(shape: tuple[int, int], ra: float, dec: float, scale_arcsec: float, orient: float):
    import math

    ny, nx = shape
    step = scale_arcsec / 3600.0
    theta = math.radians(orient)
    return [
        ("WCSAXES", 2, "number of World Coordinate System axes"),
        ("CRPIX1", nx / 2.0, "x-coordinate of reference pixel"),
        ("CRPIX2", ny / 2.0, "y-coordinate of reference pixel"),
        ("CRVAL1", ra, "first axis value at reference pixel"),
        ("CRVAL2", dec, "second axis value at reference pixel"),
        ("CTYPE1", "RA---TAN", "the coordinate type for the first axis"),
        ("CTYPE2", "DEC--TAN", "the coordinate type for the second axis"),
        ("CD1_1", -step * math.cos(theta), "partial of first axis coordinate w.r.t. x"),
        ("CD1_2", step * math.sin(theta), "partial of first axis coordinate w.r.t. y"),
        ("CD2_1", step * math.sin(theta), "partial of second axis coordinate w.r.t. x"),
        ("CD2_2", step * math.cos(theta), "partial of second axis coordinate w.r.t. y"),
        ("ORIENTAT", orient, "position angle of image y axis (deg. e of n)"),
    ]


def _empty_ext(extname: str, extver: int, rootname: str, shape: tuple[int, int], value: float):
    """An ERR or DQ extension of a raw file: no data, NPIX1/NPIX2/PIXVALUE."""
    from astropy.io import fits

    hdu = fits.ImageHDU(name=extname, ver=extver)
    hdu.header["ROOTNAME"] = (rootname, "rootname of the observation set")
    hdu.header["NPIX1"] = (shape[1], "length of constant array axis 1")
    hdu.header["NPIX2"] = (shape[0], "length of constant array axis 2")
    hdu.header["PIXVALUE"] = (value, "values of pixels in constant array")
    return hdu


def _common_primary(
    filename: str,
    rootname: str,
    instrument: str,
    targname: str,
    ra: float,
    dec: float,
    proposid: int,
    linenum: str,
    date_obs: str,
    time_obs: str,
    exptime: float,
    asn_id: str,
    asn_mtyp: str,
) -> list[Card]:
    expstart = _mjd(date_obs, time_obs)
    return [
        ("NEXTEND", 0, "Number of standard extensions"),
        ("DATE", "2024-01-01", "date this file was written (yyyy-mm-dd)"),
        ("FILENAME", filename, "name of file"),
        ("FILETYPE", "SCI", "type of data found in data file"),
        ("TELESCOP", "HST", "telescope used to acquire data"),
        ("INSTRUME", instrument, "identifier for instrument used to acquire data"),
        ("EQUINOX", 2000.0, "equinox of celestial coord. system"),
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("PRIMESI", instrument, "instrument designated as prime"),
        ("TARGNAME", targname, "proposer's target name"),
        ("RA_TARG", ra, "right ascension of the target (deg) (J2000)"),
        ("DEC_TARG", dec, "declination of the target (deg) (J2000)"),
        ("PROPOSID", proposid, "PEP proposal identifier"),
        ("LINENUM", linenum, "proposal logsheet line number"),
        ("PR_INV_L", "Synthetic", "last name of principal investigator"),
        ("PR_INV_F", "Test", "first name of principal investigator"),
        ("DATE-OBS", date_obs, "UT date of start of observation (yyyy-mm-dd)"),
        ("TIME-OBS", time_obs, "UT time of start of observation (hh:mm:ss)"),
        ("EXPSTART", expstart, "exposure start time (Modified Julian Date)"),
        ("EXPEND", round(expstart + exptime / 86400.0, 8), "exposure end time (MJD)"),
        ("EXPTIME", exptime, "exposure duration (seconds)--calculated"),
        ("EXPFLAG", "NORMAL", "Exposure interruption indicator"),
        ("OPUS_VER", "HSTDP 2023_3", "data processing software system version"),
        ("CAL_VER", "", "calibration code version"),
        ("ASN_ID", asn_id, "unique identifier assigned to association"),
        ("ASN_TAB", f"{asn_id.lower()}_asn.fits" if asn_id != "NONE" else "", "association table"),
        ("ASN_MTYP", asn_mtyp, "Role of the Member in the Association"),
    ]


def _write(path: Path, hdus: list[Any]) -> Path:
    from astropy.io import fits

    hdus[0].header["NEXTEND"] = len(hdus) - 1
    for hdu in hdus:
        _mark_synthetic(hdu.header)
    fits.HDUList(hdus).writeto(path, overwrite=True, output_verify="silentfix")
    return path


def _folder(folder: str | Path) -> Path:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_rootname(name: str, letter: str) -> str:
    if len(name) != 9 or not name.isalnum() or name[0].lower() != letter:
        raise ValueError(f"{name!r} is not a 9-character {letter.upper()}... IPPPSSOOT")
    return name.lower()


def _member_names(asn: str, count: int, first: str = "a") -> list[str]:
    """Exposure names of an association: same IPPPSS, OO = letter+digit, T = 'q'."""
    if not 1 <= count <= 9:
        raise ValueError("an association has 1 to 9 synthetic members")
    return [f"{asn[:6]}{first}{i + 1}q" for i in range(count)]


def make_asn_table(
    path: str | Path,
    asn: str,
    instrument: str,
    detector: str,
    members: Sequence[tuple[str, str, bool]],
) -> Path:
    """Write an association table ``path`` with rows (MEMNAME, MEMTYPE, MEMPRSNT)."""
    import numpy as np
    from astropy.io import fits

    names = np.array([m[0].upper() for m in members], dtype="S14")
    types = np.array([m[1].upper() for m in members], dtype="S14")
    present = np.array([bool(m[2]) for m in members])
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="MEMNAME", format="14A", array=names),
            fits.Column(name="MEMTYPE", format="14A", array=types),
            fits.Column(name="MEMPRSNT", format="L", array=present),
        ],
        name="ASN",
    )
    table.header["ROOTNAME"] = (asn, "rootname of the observation set")
    primary = fits.PrimaryHDU(
        header=_header(
            [
                ("NEXTEND", 1, "Number of standard extensions"),
                ("FILENAME", Path(path).name, "name of file"),
                ("FILETYPE", "ASN_TABLE", "type of data found in data file"),
                ("TELESCOP", "HST", "telescope used to acquire data"),
                ("INSTRUME", instrument, "identifier for instrument used to acquire data"),
                ("DETECTOR", detector, "detector in use"),
                ("ROOTNAME", asn, "rootname of the observation set"),
                ("ASN_ID", asn, "unique identifier assigned to association"),
                ("ASN_TAB", Path(path).name, "name of the association table"),
                ("ASN_STAT", "COMPLETE", "status of the association"),
            ]
        )
    )
    return _write(Path(path), [primary, table])


# ---------------------------------------------------------------------------
# ACS


_ACS_TARGET = ("NGC-SYNTH-1", 6.0221, -72.0813)

_ACS_REFERENCE_FILES = [
    # Initial reference keywords, as the archive would hand them over. CRDS bestrefs
    # replaces them; the stand-ins only check that "jref$" resolves.
    ("BPIXTAB", "jref$25g1256mj_bpx.fits", "bad pixel table"),
    ("CCDTAB", "jref$xa81715gj_ccd.fits", "CCD calibration parameters"),
    ("ATODTAB", "N/A", "analog to digital correction file"),
    ("OSCNTAB", "jref$17717071j_osc.fits", "CCD overscan table"),
    ("BIASFILE", "jref$25e15278j_bia.fits", "bias image file name"),
    ("FLSHFILE", "N/A", "post flash correction file name"),
    ("CRREJTAB", "jref$29p1548cj_crr.fits", "cosmic ray rejection parameters"),
    ("SHADFILE", "N/A", "shutter shading correction file"),
    ("DARKFILE", "jref$25e15284j_drk.fits", "dark image file name"),
    ("PFLTFILE", "jref$qb12257sj_pfl.fits", "pixel to pixel flat field file name"),
    ("DFLTFILE", "N/A", "delta flat field file name"),
    ("LFLTFILE", "N/A", "low order flat"),
    ("PHOTTAB", "N/A", "Photometric throughput table"),
    ("IMPHTTAB", "jref$2391649qj_imp.fits", "Image Photometry Table"),
    ("IDCTAB", "jref$11d1433lj_idc.fits", "image distortion correction table"),
    ("DGEOFILE", "jref$qbu16424j_dxy.fits", "Distortion correction image"),
    ("NPOLFILE", "jref$02c14514j_npl.fits", "Non-polynomial offsets"),
    ("D2IMFILE", "jref$02c1450oj_d2i.fits", "Column Correction Reference File"),
    ("MDRIZTAB", "jref$37g1550cj_mdz.fits", "MultiDrizzle parameter table"),
    ("DRKCFILE", "jref$25e15402j_dkc.fits", "De-trailed Dark Reference File"),
    ("PCTETAB", "jref$19i16323j_cte.fits", "CTE Correction Table"),
    ("SNKCFILE", "jref$25e1527ij_snk.fits", "Map of sink pixels"),
    ("CFLTFILE", "N/A", "Coronagraphic spot image"),
    ("SPOTTAB", "N/A", "Coronagraphic spot offset table"),
]


def _acs_primary(
    rootname: str,
    detector: str,
    filters: tuple[str, str],
    date_obs: str,
    time_obs: str,
    exptime: float,
    asn_id: str,
    asn_mtyp: str,
    crsplit: int,
) -> list[Card]:
    target, ra, dec = _ACS_TARGET
    is_wfc = detector == "WFC"
    cards = _common_primary(
        f"{rootname}_raw.fits",
        rootname,
        "ACS",
        target,
        ra,
        dec,
        10265,
        "01.001",
        date_obs,
        time_obs,
        exptime,
        asn_id,
        asn_mtyp,
    )
    cards += [
        ("IMAGETYP", "EXT", "type of exposure identifier"),
        ("OBSTYPE", "IMAGING", "observation type - imaging or spectroscopic"),
        ("OBSMODE", "ACCUM", "operating mode"),
        ("CTEIMAGE", "NONE", "type of Charge Transfer Image, if applicable"),
        ("SCLAMP", "NONE", "lamp status, NONE or name of lamp which is on"),
        ("NRPTEXP", 1, "number of repeat exposures in set: default 1"),
        ("SUBARRAY", False, "data from a subarray (T) or full frame (F)"),
        ("DETECTOR", detector, "detector in use: WFC, HRC, or SBC"),
        ("FILTER1", filters[0], "element selected from filter wheel 1"),
        ("FW1OFFST", 0, "computed filter wheel offset"),
        ("FILTER2", filters[1], "element selected from filter wheel 2"),
        ("FW2OFFST", 0, "computed filter wheel offset"),
        ("FWSOFFST", 0, "computed filter wheel offset"),
        ("LRFWAVE", 0.0, "proposed linear ramp filter wavelength"),
        ("APERTURE", "WFC" if is_wfc else "HRC", "aperture name"),
        ("PROPAPER", "WFC" if is_wfc else "HRC", "proposed aperture name"),
        ("DIRIMAGE", "NONE", "direct image for grism or prism exposure"),
        ("CTEDIR", "NONE", "CTE measurement direction: serial or parallel"),
        ("CRSPLIT", crsplit, "number of cosmic ray split exposures"),
        ("STATFLAG", True, "Calculate statistics?"),
        ("WRTERR", True, "write out error array extension"),
        ("DQICORR", "PERFORM", "data quality initialization"),
        ("ATODCORR", "OMIT", "correct for A to D conversion errors"),
        ("BLEVCORR", "PERFORM", "subtract bias level computed from overscan img"),
        ("BIASCORR", "PERFORM", "Subtract bias image"),
        ("FLSHCORR", "OMIT", "post flash correction"),
        ("CRCORR", "PERFORM" if crsplit > 1 else "OMIT", "combine observations to reject CRs"),
        ("EXPSCORR", "PERFORM", "process individual observations after cr-reject"),
        ("SHADCORR", "OMIT", "apply shutter shading correction"),
        ("DARKCORR", "PERFORM", "Subtract dark image"),
        ("FLATCORR", "PERFORM", "flat field data"),
        ("PHOTCORR", "PERFORM", "populate photometric header keywords"),
        ("RPTCORR", "OMIT", "add individual repeat observations"),
        ("DRIZCORR", "PERFORM", "drizzle processing"),
        ("PCTECORR", "PERFORM" if is_wfc else "OMIT", "pixel-based CTE correction"),
        ("SINKCORR", "PERFORM" if is_wfc else "OMIT", "sink pixel flagging"),
        ("GLINCORR", "OMIT", "correct for global detector non-linearities"),
        ("LFLGCORR", "OMIT", "flag local and global non-linearities"),
    ]
    refs = _ACS_REFERENCE_FILES if is_wfc else [(k, "N/A", c) for k, _, c in _ACS_REFERENCE_FILES]
    cards += refs
    cards += [
        ("GRAPHTAB", "N/A", "the HST graph table"),
        ("COMPTAB", "N/A", "the HST components table"),
        ("FLASHDUR", 0.0, "Exposure time in seconds: 0.1 to 409.5"),
        ("FLASHCUR", "OFF", "Post flash current: OFF, LOW, MED, HIGH"),
        ("FLASHSTA", "NOT PERFORMED", "Status: SUCCESSFUL, ABORTED, NOT PERFORMED"),
        ("SHUTRPOS", "A", "Shutter position: A or B"),
        ("CCDAMP", "ABCD" if is_wfc else "C", "CCD Amplifier Readout Configuration"),
        ("CCDGAIN", 2.0, "commanded gain of CCD"),
        ("CCDOFSTA", 3, "commanded CCD bias offset for amplifier A"),
        ("CCDOFSTB", 3, "commanded CCD bias offset for amplifier B"),
        ("CCDOFSTC", 3, "commanded CCD bias offset for amplifier C"),
        ("CCDOFSTD", 3, "commanded CCD bias offset for amplifier D"),
    ]
    return cards


def _acs_science(
    rootname: str, shape: tuple[int, int], detector: str, chip_index: int, extver: int, seed: int
):
    from astropy.io import fits

    _, ra, dec = _ACS_TARGET
    is_wfc = detector == "WFC"
    ny, nx = shape
    cards: list[Card] = [
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("EXPNAME", rootname, "exposure identifier"),
        ("BUNIT", "COUNTS", "brightness units"),
        ("CCDCHIP", chip_index, "CCD chip (1 or 2)"),
    ]
    cards += _wcs_cards(shape, ra, dec + (0.0 if chip_index == 1 else -0.001), 0.05, 95.2)
    cards += [
        ("LTV1", 24.0 if is_wfc else 19.0, "offset in X to subsection start"),
        ("LTV2", 0.0, "offset in Y to subsection start"),
        ("LTM1_1", 1.0, "reciprocal of sampling rate in X"),
        ("LTM2_2", 1.0, "reciprocal of sampling rate in Y"),
        ("VAFACTOR", 1.0000389, "velocity aberration plate scale factor"),
        ("CENTERA1", 2073 if is_wfc else 532, "subarray axis1 center pt in unbinned pix"),
        ("CENTERA2", 1035 if is_wfc else 523, "subarray axis2 center pt in unbinned pix"),
        ("SIZAXIS1", nx, "subarray axis1 size in unbinned detector pixels"),
        ("SIZAXIS2", ny, "subarray axis2 size in unbinned detector pixels"),
        ("BINAXIS1", 1, "axis1 data bin size in unbinned detector pixels"),
        ("BINAXIS2", 1, "axis2 data bin size in unbinned detector pixels"),
        ("NCOMBINE", 1, "number of image sets combined"),
        ("SDQFLAGS", 31743, "serious data quality flags"),
    ]
    hdu = fits.ImageHDU(_sky_counts(shape, seed), name="SCI", ver=extver)
    hdu.header.update(_header(cards))
    return hdu


def _acs_raw_file(
    folder: Path,
    rootname: str,
    detector: str,
    filters: tuple[str, str],
    shape: tuple[int, int],
    date_obs: str,
    time_obs: str,
    exptime: float,
    asn_id: str = "NONE",
    asn_mtyp: str = "",
    crsplit: int = 1,
) -> Path:
    from astropy.io import fits

    primary = fits.PrimaryHDU(
        header=_header(
            _acs_primary(
                rootname, detector, filters, date_obs, time_obs, exptime, asn_id, asn_mtyp, crsplit
            )
        )
    )
    hdus = [primary]
    # ACS/WFC raws store chip 2 in imset 1 and chip 1 in imset 2.
    chips = [2, 1] if detector == "WFC" else [1]
    for extver, chip in enumerate(chips, start=1):
        hdus.append(_acs_science(rootname, shape, detector, chip, extver, _seed(rootname) + chip))
        hdus.append(_empty_ext("ERR", extver, rootname, shape, 0.0))
        hdus.append(_empty_ext("DQ", extver, rootname, shape, 0))
    return _write(folder / f"{rootname}_raw.fits", hdus)


def make_acs_raw(
    folder: str | Path,
    rootname: str = "j8cb02a1q",
    *,
    detector: str = "WFC",
    filters: tuple[str, str] = ("F606W", "CLEAR2L"),
    shape: tuple[int, int] = DEFAULT_SHAPE,
    date_obs: str = "2017-06-26",
    time_obs: str = "16:21:33",
    exptime: float = 339.0,
) -> list[Path]:
    """Write one SYNTHETIC ACS raw, ``<rootname>_raw.fits`` (WFC: two chips; HRC: one)."""
    rootname = _check_rootname(rootname, "j")
    if detector not in ("WFC", "HRC"):
        raise ValueError("synthetic ACS raws are WFC or HRC")
    if detector == "HRC":
        filters = (filters[0], "CLEAR2S") if filters[1] == "CLEAR2L" else filters
        date_obs = "2005-03-15" if date_obs > "2007" else date_obs
    return [
        _acs_raw_file(
            _folder(folder), rootname, detector, filters, shape, date_obs, time_obs, exptime
        )
    ]


def make_acs_association(
    folder: str | Path,
    asn: str = "j8cb01010",
    *,
    members: int = 2,
    filters: tuple[str, str] = ("F606W", "CLEAR2L"),
    shape: tuple[int, int] = DEFAULT_SHAPE,
    date_obs: str = "2017-06-26",
    missing: Sequence[str] = (),
) -> list[Path]:
    """Write a SYNTHETIC ACS/WFC CR-split association: ``<asn>_asn.fits`` + member raws.

    The table lists ``members`` EXP-CRJ exposures, a PROD-CRJ product
    ``<asn[:-1]>1`` and a PROD-DTH product ``<asn>``. Members named in
    ``missing`` are listed with MEMPRSNT=F and get no raw file.
    """
    asn = _check_rootname(asn, "j")
    folder = _folder(folder)
    names = _member_names(asn, members)
    rows = [(name, "EXP-CRJ", name not in missing) for name in names]
    rows += [(asn[:-1] + "1", "PROD-CRJ", True), (asn, "PROD-DTH", True)]
    paths = [make_asn_table(folder / f"{asn}_asn.fits", asn, "ACS", "WFC", rows)]
    for index, name in enumerate(names):
        if name in missing:
            continue
        time_obs = f"16:{21 + 7 * index:02d}:33"
        paths.append(
            _acs_raw_file(
                folder,
                name,
                "WFC",
                filters,
                shape,
                date_obs,
                time_obs,
                339.0,
                asn.upper(),
                "EXP-CRJ",
                crsplit=members,
            )
        )
    return paths


# ---------------------------------------------------------------------------
# WFC3


_WFC3_TARGET = ("SYNTH-FIELD-2", 150.1163, 2.2058)


def _wfc3_primary(
    rootname: str,
    detector: str,
    filter_name: str,
    date_obs: str,
    time_obs: str,
    exptime: float,
    asn_id: str,
    asn_mtyp: str,
    crsplit: int,
    nsamp: int,
) -> list[Card]:
    target, ra, dec = _WFC3_TARGET
    uvis = detector == "UVIS"
    cards = _common_primary(
        f"{rootname}_raw.fits",
        rootname,
        "WFC3",
        target,
        ra,
        dec,
        15647,
        "02.001",
        date_obs,
        time_obs,
        exptime,
        asn_id,
        asn_mtyp,
    )
    cards += [
        ("IMAGETYP", "EXT", "type of exposure identifier"),
        ("OBSTYPE", "IMAGING", "observation type - imaging or spectroscopic"),
        ("OBSMODE", "ACCUM" if uvis else "MULTIACCUM", "operating mode"),
        ("SCLAMP", "NONE", "lamp status, NONE or name of lamp which is on"),
        ("NRPTEXP", 1, "number of repeat exposures in set: default 1"),
        ("SUBARRAY", False, "data from a subarray (T) or full frame (F)"),
        ("SUBTYPE", "FULLIMAG", "Size/type of IR subarray"),
        ("DETECTOR", detector, "detector in use: UVIS or IR"),
        ("FILTER", filter_name, "element selected from filter wheel"),
        ("APERTURE", "UVIS" if uvis else "IR", "aperture name"),
        ("PROPAPER", "UVIS" if uvis else "IR", "proposed aperture name"),
        ("DIRIMAGE", "NONE", "direct image for grism or prism exposure"),
        ("CTEDIR", "NONE", "CTE measurement direction: serial or parallel"),
        ("CRSPLIT", crsplit, "number of cosmic ray split exposures"),
        ("SAMP_SEQ", "NONE" if uvis else "SPARS25", "MultiAccum exposure time sequence name"),
        ("NSAMP", 0 if uvis else nsamp, "number of MULTIACCUM samples"),
        ("CHINJECT", "NONE", "Charge Injection Mode"),
        ("STATFLAG", True, "Calculate statistics?"),
        ("WRTERR", True, "write out error array extension"),
        ("DQICORR", "PERFORM", "data quality initialization"),
        ("ZSIGCORR", None if uvis else "PERFORM", "Zero read signal correction"),
        ("ZOFFCORR", None if uvis else "PERFORM", "subtract MULTIACCUM zero read"),
        ("DARKCORR", "PERFORM", "Subtract dark image"),
        ("BLEVCORR", "PERFORM", "subtract bias level computed from ref pixels"),
        ("NLINCORR", None if uvis else "PERFORM", "correct for detector nonlinearities"),
        ("FLATCORR", "PERFORM", "flat field data"),
        ("CRCORR", "PERFORM" if (crsplit > 1 or not uvis) else "OMIT", "identify CRs"),
        ("UNITCORR", None if uvis else "PERFORM", "convert to count rates"),
        ("PHOTCORR", "PERFORM", "populate photometric header keywords"),
        ("RPTCORR", "OMIT", "add individual repeat observations"),
        ("DRIZCORR", "PERFORM", "drizzle processing"),
        ("ATODCORR", "OMIT" if uvis else None, "correct for A to D conversion errors"),
        ("BIASCORR", "PERFORM" if uvis else None, "Subtract bias image"),
        ("FLSHCORR", "OMIT" if uvis else None, "post flash correction"),
        ("SHADCORR", "OMIT" if uvis else None, "apply shutter shading correction"),
        ("EXPSCORR", "PERFORM", "process individual observations after cr-reject"),
        ("PCTECORR", "PERFORM" if uvis else None, "pixel-based CTE correction"),
        ("BPIXTAB", "iref$2ck1855hi_bpx.fits" if uvis else "iref$3562022ni_bpx.fits", "bpx"),
        ("CCDTAB", "iref$t291659mi_ccd.fits" if uvis else "iref$t2c16200i_ccd.fits", "ccd"),
        ("OSCNTAB", "iref$q911321oi_osc.fits" if uvis else "iref$q911321mi_osc.fits", "osc"),
        ("BIASFILE", "N/A", "bias image file name"),
        ("DARKFILE", "N/A", "dark image file name"),
        ("PFLTFILE", "N/A", "pixel to pixel flat field file name"),
        ("NLINFILE", "N/A", "detector nonlinearities file"),
        ("CRREJTAB", "N/A", "cosmic ray rejection parameters"),
        ("IMPHTTAB", "N/A", "Image Photometry Table"),
        ("IDCTAB", "N/A", "image distortion correction table"),
        ("MDRIZTAB", "N/A", "MultiDrizzle parameter table"),
        ("FLASHDUR", 0.0, "Exposure time in seconds: 0.1 to 409.5"),
        ("FLASHCUR", "OFF", "Post flash current (zero, low, medium, high)"),
        ("FLASHSTA", "NOT PERFORMED", "Status: SUCCESSFUL, ABORTED, NOT PERFORMED"),
        ("SHUTRPOS", "A", "Shutter position: A or B"),
        ("CCDAMP", "ABCD", "CCD Amplifier Readout Configuration"),
        ("CCDGAIN", 1.5 if uvis else 2.5, "commanded gain of CCD"),
        ("CCDOFSAB", None if uvis else 190, "commanded CCD bias offset for amps A&B"),
        ("CCDOFSCD", None if uvis else 190, "commanded CCD bias offset for amps C&D"),
        ("CCDOFSTA", 3 if uvis else None, "commanded CCD bias offset for amplifier A"),
        ("CCDOFSTB", 3 if uvis else None, "commanded CCD bias offset for amplifier B"),
        ("CCDOFSTC", 3 if uvis else None, "commanded CCD bias offset for amplifier C"),
        ("CCDOFSTD", 3 if uvis else None, "commanded CCD bias offset for amplifier D"),
    ]
    return cards


def _wfc3_ext_cards(
    rootname: str, shape: tuple[int, int], detector: str, chip: int, dec_offset: float
) -> list[Card]:
    _, ra, dec = _WFC3_TARGET
    uvis = detector == "UVIS"
    ny, nx = shape
    cards: list[Card] = [
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("EXPNAME", rootname, "exposure identifier"),
        ("BUNIT", "COUNTS", "brightness units"),
        ("CCDCHIP", chip, "CCD chip (1 or 2)"),
    ]
    cards += _wcs_cards(shape, ra, dec + dec_offset, 0.04 if uvis else 0.13, 45.0)
    cards += [
        ("LTV1", 25.0 if uvis else 5.0, "offset in X to subsection start"),
        ("LTV2", 0.0 if uvis else 5.0, "offset in Y to subsection start"),
        ("LTM1_1", 1.0, "reciprocal of sampling rate in X"),
        ("LTM2_2", 1.0, "reciprocal of sampling rate in Y"),
        ("CENTERA1", 2073 if uvis else 513, "subarray axis1 center pt in unbinned pix"),
        ("CENTERA2", 1035 if uvis else 513, "subarray axis2 center pt in unbinned pix"),
        ("SIZAXIS1", nx, "subarray axis1 size in unbinned detector pixels"),
        ("SIZAXIS2", ny, "subarray axis2 size in unbinned detector pixels"),
        ("BINAXIS1", 1, "axis1 data bin size in unbinned detector pixels"),
        ("BINAXIS2", 1, "axis2 data bin size in unbinned detector pixels"),
        ("SDQFLAGS", 31743, "serious data quality flags"),
    ]
    return cards


def _wfc3_raw_file(
    folder: Path,
    rootname: str,
    detector: str,
    filter_name: str,
    shape: tuple[int, int],
    date_obs: str,
    time_obs: str,
    exptime: float,
    asn_id: str = "NONE",
    asn_mtyp: str = "",
    crsplit: int = 1,
    nsamp: int = 3,
) -> Path:
    import numpy as np
    from astropy.io import fits

    primary = fits.PrimaryHDU(
        header=_header(
            _wfc3_primary(
                rootname,
                detector,
                filter_name,
                date_obs,
                time_obs,
                exptime,
                asn_id,
                asn_mtyp,
                crsplit,
                nsamp,
            )
        )
    )
    hdus = [primary]
    seed = _seed(rootname)
    if detector == "UVIS":
        for extver, chip in enumerate([2, 1], start=1):
            sci = fits.ImageHDU(_sky_counts(shape, seed + chip), name="SCI", ver=extver)
            sci.header.update(_header(_wfc3_ext_cards(rootname, shape, detector, chip, 0.0)))
            hdus += [
                sci,
                _empty_ext("ERR", extver, rootname, shape, 0.0),
                _empty_ext("DQ", extver, rootname, shape, 0),
            ]
    else:
        # IR MULTIACCUM: imset 1 is the last read, imset NSAMP the zeroth read.
        final = _sky_counts(shape, seed, bias=11000.0).astype(np.float64)
        zero = np.full(shape, 11000.0)
        for extver in range(1, nsamp + 1):
            fraction = (nsamp - extver) / max(nsamp - 1, 1)
            read = (zero + (final - zero) * fraction).astype(np.uint16)
            sci = fits.ImageHDU(read, name="SCI", ver=extver)
            sci.header.update(_header(_wfc3_ext_cards(rootname, shape, detector, 1, 0.0)))
            sci.header["SAMPTIME"] = (exptime * fraction, "total integration time (sec)")
            samp = fits.ImageHDU(name="SAMP", ver=extver)
            samp.header["PIXVALUE"] = (extver, "values of pixels in constant array")
            time = fits.ImageHDU(name="TIME", ver=extver)
            time.header["PIXVALUE"] = (exptime * fraction, "values of pixels in constant array")
            hdus += [
                sci,
                _empty_ext("ERR", extver, rootname, shape, 0.0),
                _empty_ext("DQ", extver, rootname, shape, 0),
                samp,
                time,
            ]
    return _write(folder / f"{rootname}_raw.fits", hdus)


def make_wfc3_raw(
    folder: str | Path,
    rootname: str = "ibqt02a1q",
    *,
    detector: str = "UVIS",
    filter_name: str | None = None,
    shape: tuple[int, int] = DEFAULT_SHAPE,
    date_obs: str = "2019-03-14",
    time_obs: str = "07:42:11",
    exptime: float = 402.0,
    nsamp: int = 3,
) -> list[Path]:
    """Write one SYNTHETIC WFC3 raw: UVIS (two chips) or IR (``nsamp`` MULTIACCUM reads)."""
    rootname = _check_rootname(rootname, "i")
    if detector not in ("UVIS", "IR"):
        raise ValueError("WFC3 detectors are UVIS and IR")
    if filter_name is None:
        filter_name = "F606W" if detector == "UVIS" else "F160W"
    return [
        _wfc3_raw_file(
            _folder(folder),
            rootname,
            detector,
            filter_name,
            shape,
            date_obs,
            time_obs,
            exptime,
            nsamp=nsamp,
        )
    ]


def make_wfc3_association(
    folder: str | Path,
    asn: str = "ibqt01010",
    *,
    members: int = 2,
    filter_name: str = "F606W",
    shape: tuple[int, int] = DEFAULT_SHAPE,
    date_obs: str = "2019-03-14",
    missing: Sequence[str] = (),
) -> list[Path]:
    """Write a SYNTHETIC WFC3/UVIS CR-split association: ``<asn>_asn.fits`` + member raws."""
    asn = _check_rootname(asn, "i")
    folder = _folder(folder)
    names = _member_names(asn, members)
    rows = [(name, "EXP-CRJ", name not in missing) for name in names]
    rows += [(asn[:-1] + "1", "PROD-CRJ", True), (asn, "PROD-DTH", True)]
    paths = [make_asn_table(folder / f"{asn}_asn.fits", asn, "WFC3", "UVIS", rows)]
    for index, name in enumerate(names):
        if name in missing:
            continue
        paths.append(
            _wfc3_raw_file(
                folder,
                name,
                "UVIS",
                filter_name,
                shape,
                date_obs,
                f"07:{42 + 8 * index:02d}:11",
                402.0,
                asn.upper(),
                "EXP-CRJ",
                crsplit=members,
            )
        )
    return paths


# ---------------------------------------------------------------------------
# STIS


_STIS_TARGET = ("SYNTH-STAR-3", 83.8221, -5.3911)


def _stis_primary(
    filename: str,
    rootname: str,
    obstype: str,
    imagetyp: str,
    date_obs: str,
    time_obs: str,
    exptime: float,
) -> list[Card]:
    target, ra, dec = _STIS_TARGET
    spectro = obstype == "SPECTROSCOPIC"
    cards = _common_primary(
        filename,
        rootname,
        "STIS",
        target,
        ra,
        dec,
        15070,
        "01.002",
        date_obs,
        time_obs,
        exptime,
        "NONE",
        "",
    )
    cards += [
        ("IMAGETYP", imagetyp, "type of exposure identifier"),
        ("OBSTYPE", obstype, "observation type - imaging or spectroscopic"),
        ("OBSMODE", "ACCUM", "operating mode"),
        ("SCLAMP", "HITM1" if imagetyp == "WAVECAL" else "NONE", "lamp status"),
        ("NRPTEXP", 1, "number of repeat exposures in set: default 1"),
        ("SUBARRAY", False, "data from a subarray (T) or full frame (F)"),
        ("DETECTOR", "CCD", "detector in use: CCD, FUV-MAMA or NUV-MAMA"),
        ("OPT_ELEM", "G430L" if spectro else "MIRVIS", "optical element in use"),
        ("CENWAVE", 4300 if spectro else 5735, "central wavelength of spectrum"),
        ("APERTURE", "52X2" if spectro else "50CCD", "aperture name"),
        ("PROPAPER", "52X2" if spectro else "50CCD", "proposed aperture name"),
        ("CRSPLIT", 1, "number of cosmic ray split exposures"),
        ("CCDAMP", "D", "CCD amplifier read out (A,B,C,D)"),
        ("CCDGAIN", 1, "commanded gain of CCD"),
        ("CCDOFFST", 3, "commanded CCD bias offset"),
        ("BINAXIS1", 1, "axis1 data bin size in unbinned detector pixels"),
        ("BINAXIS2", 1, "axis2 data bin size in unbinned detector pixels"),
        ("STATFLAG", True, "Calculate statistics?"),
        ("DQICORR", "PERFORM", "data quality initialization"),
        ("ATODCORR", "OMIT", "correct for A to D conversion errors"),
        ("BLEVCORR", "PERFORM", "subtract bias level computed from overscan img"),
        ("BIASCORR", "PERFORM", "Subtract bias image"),
        ("CRCORR", "OMIT", "combine observations to reject cosmic rays"),
        ("RPTCORR", "OMIT", "add individual repeat observations"),
        ("EXPSCORR", "OMIT", "process individual observations after cr-reject"),
        ("DARKCORR", "PERFORM", "Subtract dark image"),
        ("FLATCORR", "PERFORM", "flat field data"),
        ("SHADCORR", "OMIT", "apply shutter shading correction"),
        ("PHOTCORR", "PERFORM", "populate photometric header keywords"),
        ("CTECORR", "PERFORM" if spectro else "OMIT", "correction for CCD charge transfer"),
        ("WAVECORR", "PERFORM" if spectro else "OMIT", "use wavecal to adjust wavelength"),
        ("X1DCORR", "PERFORM" if spectro else "OMIT", "Perform 1-D spectral extraction"),
        ("BACKCORR", "PERFORM" if spectro else "OMIT", "subtract background"),
        ("HELCORR", "PERFORM" if spectro else "OMIT", "convert to heliocentric wavelengths"),
        ("DISPCORR", "PERFORM" if spectro else "OMIT", "apply 2-dimensional dispersion"),
        ("FLUXCORR", "PERFORM" if spectro else "OMIT", "convert to absolute flux units"),
        ("X2DCORR", "PERFORM", "rectify 2-D spectral image"),
        ("GEOCORR", "OMIT", "perform geometric correction for imaging modes"),
        ("LORSCORR", "OMIT", "convert MAMA image to low-res"),
        ("GLINCORR", "OMIT", "correct for global detector non-linearities"),
        ("LFLGCORR", "OMIT", "flag local and global non-linearities"),
        ("TDSCORR", "PERFORM", "time-dependent sensitivity correction"),
        ("SC2DCORR", "OMIT", "scattered light correction for echelle"),
        ("SGEOCORR", "OMIT", "small scale distortion correction"),
        ("BPIXTAB", "oref$h1v11475o_bpx.fits", "bad pixel table"),
        ("CCDTAB", "N/A", "CCD calibration parameters"),
        ("BIASFILE", "N/A", "bias image file name"),
        ("DARKFILE", "N/A", "dark image file name"),
        ("PFLTFILE", "N/A", "pixel to pixel flat field file name"),
        ("LFLTFILE", "N/A", "low order flat"),
        ("APERTAB", "N/A", "relative aperture throughput table"),
        ("PHOTTAB", "N/A", "Photometric throughput table"),
        ("TDSTAB", "N/A", "time-dependent sensitivity table"),
        ("IMPHTTAB", "N/A", "Image Photometry Table"),
    ]
    return cards


def _stis_image_file(
    path: Path, rootname: str, obstype: str, imagetyp: str, shape: tuple[int, int]
) -> Path:
    from astropy.io import fits

    _, ra, dec = _STIS_TARGET
    date_obs, time_obs = "2018-02-11", "11:09:47"
    exptime = 1.5 if imagetyp == "WAVECAL" else 600.0
    primary = fits.PrimaryHDU(
        header=_header(
            _stis_primary(path.name, rootname, obstype, imagetyp, date_obs, time_obs, exptime)
        )
    )
    seed = _seed(path.name)
    sci = fits.ImageHDU(_sky_counts(shape, seed, bias=1350.0, n_stars=3), name="SCI", ver=1)
    cards: list[Card] = [
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("EXPNAME", rootname, "exposure identifier"),
        ("BUNIT", "COUNTS", "brightness units"),
        ("LTV1", 19.0, "offset in X to subsection start"),
        ("LTV2", 0.0, "offset in Y to subsection start"),
        ("LTM1_1", 1.0, "reciprocal of sampling rate in X"),
        ("LTM2_2", 1.0, "reciprocal of sampling rate in Y"),
        ("SIZAXIS1", shape[1], "subarray axis1 size in unbinned detector pixels"),
        ("SIZAXIS2", shape[0], "subarray axis2 size in unbinned detector pixels"),
    ]
    cards += _wcs_cards(shape, ra, dec, 0.05078, 12.0)
    sci.header.update(_header(cards))
    hdus = [
        primary,
        sci,
        _empty_ext("ERR", 1, rootname, shape, 0.0),
        _empty_ext("DQ", 1, rootname, shape, 0),
    ]
    return _write(path, hdus)


def _stis_epc_file(path: Path, rootname: str) -> Path:
    import numpy as np
    from astropy.io import fits

    times = np.linspace(58160.4651, 58160.4721, 8)
    temps = np.linspace(-83.2, -83.0, 8)
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="MJD", format="D", array=times),
            fits.Column(name="CCDTEMP", format="E", unit="degC", array=temps),
        ],
        name="EPC",
    )
    primary = fits.PrimaryHDU(
        header=_header(
            [
                ("FILENAME", path.name, "name of file"),
                ("FILETYPE", "EPC", "type of data found in data file"),
                ("TELESCOP", "HST", "telescope used to acquire data"),
                ("INSTRUME", "STIS", "identifier for instrument used to acquire data"),
                ("ROOTNAME", rootname, "rootname of the observation set"),
                ("DETECTOR", "CCD", "detector in use"),
            ]
        )
    )
    return _write(path, [primary, table])


def make_stis_raw(
    folder: str | Path,
    rootname: str = "odj701ujq",
    *,
    obstype: str = "SPECTROSCOPIC",
    wav: bool = False,
    epc: bool = False,
    shape: tuple[int, int] = DEFAULT_SHAPE,
) -> list[Path]:
    """Write a SYNTHETIC STIS/CCD ``<rootname>_raw.fits`` (G430L spectrum or MIRVIS image).

    ``wav=True`` adds the wavecal ``<rootname>_wav.fits``; ``epc=True`` adds the
    engineering table ``<rootname>_epc.fits`` (which caldp must not deliver).
    """
    rootname = _check_rootname(rootname, "o")
    if obstype not in ("SPECTROSCOPIC", "IMAGING"):
        raise ValueError("obstype is SPECTROSCOPIC or IMAGING")
    folder = _folder(folder)
    paths = [_stis_image_file(folder / f"{rootname}_raw.fits", rootname, obstype, "EXT", shape)]
    if wav:
        paths.append(
            _stis_image_file(
                folder / f"{rootname}_wav.fits", rootname, "SPECTROSCOPIC", "WAVECAL", shape
            )
        )
    if epc:
        paths.append(_stis_epc_file(folder / f"{rootname}_epc.fits", rootname))
    return paths


def make_stis_wav_only(
    folder: str | Path, rootname: str = "odj702w1q", *, shape: tuple[int, int] = DEFAULT_SHAPE
) -> list[Path]:
    """Write only a SYNTHETIC STIS wavecal ``<rootname>_wav.fits`` (no raw)."""
    rootname = _check_rootname(rootname, "o")
    path = _folder(folder) / f"{rootname}_wav.fits"
    return [_stis_image_file(path, rootname, "SPECTROSCOPIC", "WAVECAL", shape)]


# ---------------------------------------------------------------------------
# COS


_COS_TARGET = ("SYNTH-QSO-4", 209.3201, -9.5440)


def _cos_primary(
    filename: str, rootname: str, asn_id: str, fppos: int, time_obs: str
) -> list[Card]:
    target, ra, dec = _COS_TARGET
    cards = _common_primary(
        filename,
        rootname,
        "COS",
        target,
        ra,
        dec,
        14933,
        "01.002",
        "2017-06-30",
        time_obs,
        1116.0,
        asn_id,
        "EXP-FP",
    )
    # COS keeps the exposure times in the EVENTS header, not the primary.
    cards = [c for c in cards if c[0] not in ("DATE-OBS", "TIME-OBS", "EXPSTART", "EXPEND")]
    cards = [c for c in cards if c[0] not in ("EXPTIME", "EXPFLAG")]
    cards += [
        ("IMAGETYP", "TIME-TAG", "type of exposure identifier"),
        ("OBSTYPE", "SPECTROSCOPIC", "observation type - imaging or spectroscopic"),
        ("OBSMODE", "TIME-TAG", "operating mode"),
        ("EXPTYPE", "EXTERNAL/SCI", "type of exposure"),
        ("DETECTOR", "FUV", "FUV or NUV"),
        ("SEGMENT", "FUVA", "FUV detector segment name (FUVA, FUVB, or BOTH)"),
        ("SUBARRAY", True, "data from a subarray (T) or full frame (F)"),
        ("LAMPUSED", "NONE", "lamp status, NONE or name of lamp which is on"),
        ("LIFE_ADJ", 3, "Life Time Adjustment Position"),
        ("EXP_NUM", 1, "exposure number for repeated observations"),
        ("NRPTEXP", 1, "number of repeat exposures in set: default 1"),
        ("FPPOS", fppos, "grating offset index (1-4) for FP split"),
        ("CENWAVE", 1105, "central wavelength of spectrum"),
        ("APERTURE", "PSA", "aperture name"),
        ("PROPAPER", "PSA", "proposed aperture name"),
        ("OPT_ELEM", "G140L", "optical element in use"),
        ("SHUTTER", "Open", "External Shutter Position (OPEN, CLOSED)"),
        ("EXTENDED", "NO", "Is target specified as extended object?"),
        ("TAGFLASH", "AUTO", "Type of flashed exposures in time-tag"),
        ("FLATCORR", "PERFORM", "apply flat-field correction"),
        ("DEADCORR", "PERFORM", "correct for deadtime"),
        ("DQICORR", "PERFORM", "data quality initialization"),
        ("STATFLAG", True, "Calculate statistics?"),
        ("TEMPCORR", "PERFORM", "correct for thermal distortion"),
        ("GEOCORR", "PERFORM", "correct FUV for geometic distortion"),
        ("DGEOCORR", "OMIT", "Delta Corrections to FUV Geometric Distortion"),
        ("IGEOCORR", "PERFORM", "interpolate geometric distortion in INL file"),
        ("RANDCORR", "PERFORM", "add pseudo-random numbers to raw x and y"),
        ("RANDSEED", -1, "seed for pseudo-random number generator"),
        ("XWLKCORR", "PERFORM", "Correct FUV for Walk Distortion in X"),
        ("YWLKCORR", "PERFORM", "Correct FUV for Walk Distortion in Y"),
        ("PHACORR", "PERFORM", "filter by pulse-height"),
        ("TRCECORR", "PERFORM", "trace correction"),
        ("ALGNCORR", "PERFORM", "align data to profile"),
        ("XTRCTALG", "TWOZONE", "BOXCAR or TWOZONE"),
        ("BADTCORR", "OMIT", "filter by time (excluding bad time intervals)"),
        ("DOPPCORR", "PERFORM", "orbital Doppler correction"),
        ("HELCORR", "PERFORM", "heliocentric Doppler correction"),
        ("X1DCORR", "PERFORM", "1-D spectral extraction"),
        ("BACKCORR", "PERFORM", "subtract background (when doing 1-D extraction)"),
        ("WAVECORR", "PERFORM", "use wavecal to adjust wavelength zeropoint"),
        ("FLUXCORR", "PERFORM", "convert count-rate to absolute flux units"),
        ("BRSTCORR", "OMIT", "switch controlling search for FUV bursts"),
        ("TDSCORR", "PERFORM", "time-dependent sensitivity correction"),
        ("FLATFILE", "N/A", "Pixel to Pixel Flat Field Reference File"),
        ("DEADTAB", "N/A", "Deadtime Reference Table"),
        ("BPIXTAB", "N/A", "bad pixel table"),
        ("FLUXTAB", "N/A", "Spectroscopic flux calibration table"),
        ("DISPTAB", "N/A", "Dispersion Coefficient Reference Table"),
    ]
    return cards


def _cos_events_cards(rootname: str, time_obs: str, nevents: int) -> list[Card]:
    _, ra, dec = _COS_TARGET
    expstart = _mjd("2017-06-30", time_obs)
    return [
        ("ROOTNAME", rootname, "rootname of the observation set"),
        ("EXPNAME", rootname, "exposure identifier"),
        ("ASN_MTYP", "EXP-FP", "Role of the Member in the Association"),
        ("RA_APER", ra, "RA of reference aperture center"),
        ("DEC_APER", dec, "Declination of reference aperture center"),
        ("PA_APER", -26.8, "Position Angle of reference aperture (deg)"),
        ("DISPAXIS", 1, "dispersion axis; 1 = axis 1, 2 = axis 2, none"),
        ("DATE-OBS", "2017-06-30", "UT date of start of observation (yyyy-mm-dd)"),
        ("TIME-OBS", time_obs, "UT time of start of observation (hh:mm:ss)"),
        ("EXPSTART", expstart, "exposure start time (Modified Julian Date)"),
        ("EXPEND", round(expstart + 1116.0 / 86400.0, 8), "exposure end time (MJD)"),
        ("EXPTIME", 1116.0, "exposure duration (seconds)--calculated"),
        ("EXPFLAG", "NORMAL", "Exposure interruption indicator"),
        ("EXPTIMEA", 1116.0, "exposure time of segment A"),
        ("EXPTIMEB", 0.0, "exposure time of segment B"),
        ("NEVENTS", nevents, "number of events"),
        ("HVLEVELA", 167, "High voltage level segment A (digital units)"),
        ("HVLEVELB", 100, "High voltage level segment B (digital units)"),
    ]


def _cos_rawtag_file(folder: Path, rootname: str, asn_id: str, fppos: int, time_obs: str) -> Path:
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(_seed(rootname))
    nevents = 2000
    # A spectrum-like stripe of events across the dispersion direction.
    rawx = rng.integers(1200, 15000, nevents).astype(np.int16)
    rawy = np.clip(rng.normal(480.0, 6.0, nevents), 0, 1023).astype(np.int16)
    events = fits.BinTableHDU.from_columns(
        [
            fits.Column(
                name="TIME",
                format="1E",
                unit="seconds",
                array=np.sort(rng.uniform(0, 1116, nevents)),
            ),
            fits.Column(name="RAWX", format="1I", unit="pixels", array=rawx),
            fits.Column(name="RAWY", format="1I", unit="pixels", array=rawy),
            fits.Column(
                name="PHA", format="1B", array=rng.integers(2, 24, nevents).astype(np.uint8)
            ),
        ],
        name="EVENTS",
    )
    events.header.update(_header(_cos_events_cards(rootname, time_obs, nevents)))
    gti = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="START", format="1D", unit="seconds", array=[0.0]),
            fits.Column(name="STOP", format="1D", unit="seconds", array=[1116.0]),
        ],
        name="GTI",
    )
    name = f"{rootname}_rawtag_a.fits"
    primary = fits.PrimaryHDU(header=_header(_cos_primary(name, rootname, asn_id, fppos, time_obs)))
    return _write(folder / name, [primary, events, gti])


def _cos_spt_file(folder: Path, rootname: str, asn_id: str) -> Path:
    import numpy as np
    from astropy.io import fits

    name = f"{rootname}_spt.fits"
    target, _, _ = _COS_TARGET
    primary = fits.PrimaryHDU(
        header=_header(
            [
                ("FILENAME", name, "name of file"),
                ("FILETYPE", "SPT", "type of data found in data file"),
                ("TELESCOP", "HST", "telescope used to acquire data"),
                ("INSTRUME", "COS", "identifier for instrument used to acquire data"),
                ("ROOTNAME", rootname, "rootname of the observation set"),
                ("ASN_ID", asn_id, "unique identifier assigned to association"),
                ("TARGNAME", target, "proposer's target name"),
                ("PROPOSID", 14933, "PEP proposal identifier"),
            ]
        )
    )
    support = fits.ImageHDU(np.zeros(64, dtype=np.int16), name="SUPPORT")
    return _write(folder / name, [primary, support])


def make_cos_association(
    folder: str | Path, asn: str = "ldfd02010", *, members: int = 2
) -> list[Path]:
    """Write a SYNTHETIC COS FUV association: asn + ``_rawtag_a`` + ``_spt`` per member.

    G140L/1105, segment FUVA, lifetime position 3, one FP-POS per member.
    """
    asn = _check_rootname(asn, "l")
    folder = _folder(folder)
    names = _member_names(asn, members)
    rows = [(name, "EXP-FP", True) for name in names] + [(asn, "PROD-FP", True)]
    paths = [make_asn_table(folder / f"{asn}_asn.fits", asn, "COS", "FUV", rows)]
    for index, name in enumerate(names):
        time_obs = f"05:{index * 20:02d}:08"
        paths.append(_cos_rawtag_file(folder, name, asn.upper(), index % 4 + 1, time_obs))
        paths.append(_cos_spt_file(folder, name, asn.upper()))
    return paths


# ---------------------------------------------------------------------------
# SVM and MVM: calibrated FLC files and the poller file


def _flc_file(
    folder: Path,
    rootname: str,
    filters: tuple[str, str],
    proposid: int,
    linenum: str,
    date_obs: str,
    shape: tuple[int, int],
    dec_offset: float,
) -> Path:
    """A SYNTHETIC ACS/WFC ``_flc.fits``: calibrated, float32, two chips."""
    import numpy as np
    from astropy.io import fits

    target, ra, dec = _ACS_TARGET
    cards = _acs_primary(
        rootname, "WFC", filters, date_obs, "09:12:41", 500.0, "NONE", "", crsplit=1
    )
    primary = fits.PrimaryHDU(header=_header(cards))
    primary.header["FILENAME"] = f"{rootname}_flc.fits"
    primary.header["PROPOSID"] = proposid
    primary.header["LINENUM"] = linenum
    primary.header["CAL_VER"] = "10.3.5"
    for key in ("DQICORR", "BLEVCORR", "BIASCORR", "DARKCORR", "FLATCORR", "PHOTCORR"):
        primary.header[key] = "COMPLETE"
    hdus = [primary]
    for extver, chip in enumerate([2, 1], start=1):
        counts = _sky_counts(shape, _seed(rootname) + chip).astype(np.float32)
        sci = fits.ImageHDU((counts - np.float32(2100.0)) * 2.0, name="SCI", ver=extver)
        sci_cards: list[Card] = [
            ("ROOTNAME", rootname, "rootname of the observation set"),
            ("EXPNAME", rootname, "exposure identifier"),
            ("BUNIT", "ELECTRONS", "brightness units"),
            ("CCDCHIP", chip, "CCD chip (1 or 2)"),
            ("PHOTPLAM", 5921.9 if filters[0] == "F606W" else 8045.5, "Pivot wavelength"),
        ]
        offset = dec_offset + (0.0 if chip == 1 else -shape[0] * 0.05 / 3600.0)
        sci_cards += _wcs_cards(shape, ra, dec + offset, 0.05, 95.2)
        sci.header.update(_header(sci_cards))
        err = fits.ImageHDU(
            np.sqrt(np.abs(sci.data) + 25.0).astype(np.float32), name="ERR", ver=extver
        )
        dq = fits.ImageHDU(np.zeros(shape, dtype=np.int16), name="DQ", ver=extver)
        hdus += [sci, err, dq]
    return _write(folder / f"{rootname}_flc.fits", hdus)


def _poller_filter(filters: tuple[str, str]) -> str:
    kept = [f for f in filters if not f.upper().startswith("CLEAR")]
    return "-".join(kept).upper() if kept else "CLEAR"


def make_svm_inputs(
    folder: str | Path,
    dataset: str = "acs_8ph_01",
    *,
    filters: Sequence[str] = ("F606W", "F814W"),
    per_filter: int = 2,
    proposid: int = 10265,
    shape: tuple[int, int] = DEFAULT_SHAPE,
    missing: Sequence[str] = (),
) -> list[Path]:
    """Write a SYNTHETIC SVM visit: ``<dataset>_input.out`` + ACS/WFC FLC files.

    The FLC names start with the observation set (``acs_8ph_01`` -> ``j8ph01``).
    Poller lines have the 8 fields of a full SVM poller file: filename,
    proposal_id, program_id, obset_id, exptime, filters, detector, pathname.
    FLC names listed in ``missing`` (e.g. ``"j8ph01a1q_flc.fits"``) appear in the
    poller file but are not written.
    """
    parts = dataset.lower().split("_")
    if len(parts) != 3 or parts[0] != "acs":
        raise ValueError("synthetic SVM datasets are ACS visits named acs_<ppp>_<ss>")
    program, visit = parts[1], parts[2]
    folder = _folder(folder)
    obsset = f"j{program}{visit}"
    lines, paths = [], []
    for findex, filt in enumerate(filters):
        for index in range(per_filter):
            rootname = f"{obsset}{'abcdefgh'[findex]}{index + 1}q"
            name = f"{rootname}_flc.fits"
            pair = (filt.upper(), "CLEAR2L")
            flc = folder / name
            if name not in missing:
                _flc_file(
                    folder,
                    rootname,
                    pair,
                    proposid,
                    f"{visit}.00{index + 1}",
                    "2017-06-26",
                    shape,
                    0.0,
                )
                paths.append(flc)
            lines.append(
                ",".join(
                    [
                        name,
                        str(proposid),
                        program.upper(),
                        visit.upper(),
                        "500.0",
                        _poller_filter(pair),
                        "WFC",
                        str(flc.resolve()),
                    ]
                )
            )
    poller = folder / f"{dataset.lower()}_input.out"
    poller.write_text("\n".join(lines) + "\n", encoding="ascii")
    return [poller, *paths]


def make_mvm_inputs(
    folder: str | Path,
    dataset: str = "skycell-p2381x06y09",
    *,
    visits: Sequence[tuple[int, str, str, str]] = (
        (10265, "8ph", "01", "F606W"),
        (10266, "8pi", "02", "F814W"),
    ),
    per_visit: int = 2,
    shape: tuple[int, int] = DEFAULT_SHAPE,
) -> list[Path]:
    """Write a SYNTHETIC MVM sky cell: ``<skycell>_input.out`` + FLC files of several visits.

    ``visits`` are (proposal id, program, visit, filter). Poller lines have the
    10 fields of an MVM poller file: filename, proposal_id, program_id, obset_id,
    exptime, filters, detector, skycell_id, skycell_new, pathname.
    """
    skycell = dataset.lower()
    if not skycell.startswith("skycell-p"):
        raise ValueError("MVM datasets are named skycell-pNNNNxNNyNN")
    folder = _folder(folder)
    lines, paths = [], []
    for vindex, (proposid, program, visit, filt) in enumerate(visits):
        for index in range(per_visit):
            rootname = f"j{program}{visit}{'abcdefgh'[vindex]}{index + 1}q"
            pair = (filt.upper(), "CLEAR2L")
            date_obs = f"{2016 + vindex}-06-26"
            flc = _flc_file(
                folder, rootname, pair, proposid, f"{visit}.001", date_obs, shape, 0.0002 * vindex
            )
            paths.append(flc)
            lines.append(
                ",".join(
                    [
                        flc.name,
                        str(proposid),
                        program.upper(),
                        visit.upper(),
                        "500.0",
                        _poller_filter(pair),
                        "WFC",
                        skycell,
                        "NEW",
                        str(flc.resolve()),
                    ]
                )
            )
    poller = folder / f"{skycell}_input.out"
    poller.write_text("\n".join(lines) + "\n", encoding="ascii")
    return [poller, *paths]


# ---------------------------------------------------------------------------
# any dataset by name, and the environment file


def make_dataset(folder: str | Path, dataset: str) -> list[Path]:
    """Write SYNTHETIC inputs for ``dataset`` (any kind) into ``folder``.

    IPPPSSOOT names ending in ``0`` get an association (STIS: a raw with a
    wavecal and an epc file), others a single exposure; SVM names an ACS visit,
    ``skycell-...`` names an MVM sky cell.
    """
    name = dataset.lower()
    if name.startswith("skycell-"):
        return make_mvm_inputs(folder, name)
    if "_" in name:
        return make_svm_inputs(folder, name)
    letter = name[:1]
    association = name.endswith("0")
    if letter == "j":
        return make_acs_association(folder, name) if association else make_acs_raw(folder, name)
    if letter == "i":
        return make_wfc3_association(folder, name) if association else make_wfc3_raw(folder, name)
    if letter == "o":
        return make_stis_raw(folder, name, wav=association, epc=association)
    if letter == "l":
        if not association:
            raise ValueError("synthetic COS inputs are associations (name ending in 0)")
        return make_cos_association(folder, name)
    raise ValueError(f"no synthetic inputs for {dataset!r}")


def make_cal_env(path: str | Path, dataset: str, lines: Iterable[str]) -> Path:
    """Write ``<path>/<dataset>_cal_env.txt`` with ``lines`` (``KEY=VALUE``, one per line)."""
    target = _folder(path) / f"{dataset.lower()}_cal_env.txt"
    target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return target

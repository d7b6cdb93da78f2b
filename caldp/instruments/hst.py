"""The kinds of HST datasets caldp calibrates, one entry each."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from caldp.exit_codes import ExitCode
from caldp.instruments.model import DRIZZLE, calibrate, files_with, hstcal, mosaic

if TYPE_CHECKING:
    from caldp.datasets import Dataset

ACS = hstcal(
    "acs",
    letter="j",
    title="ACS",
    example="j8cb010b0",
    stages=(calibrate("calacs.e"), DRIZZLE),
    input_suffixes=("asn", "raw"),
    image_suffixes=("crj", "drc", "drz", "raw", "flc", "flt"),
    saturation_dq=256 | 2048,  # full-well saturation, A-to-D saturation
)

WFC3 = hstcal(
    "wfc3",
    letter="i",
    title="WFC3",
    example="iabc01xyq",
    stages=(calibrate("calwf3.e"), DRIZZLE),
    input_suffixes=("asn", "raw"),
    image_suffixes=("drc", "drz", "flc", "flt", "ima", "raw"),
    # full-well saturation; UVIS A-to-D saturation, IR signal in zero read
    saturation_dq=256 | 2048,
)


def _stis_args(dataset: Dataset, inputs: Sequence[Path]) -> list[str]:
    """``-tv`` and the raw files, or the _wav files when there are no raws."""
    chosen = files_with(inputs, "raw") or files_with(inputs, "wav")
    if not chosen:
        raise FileNotFoundError(f"no _raw.fits or _wav.fits files for {dataset.name}")
    return ["-tv", *(p.name for p in chosen)]


# STIS keeps an association's exposures inside the association's own _raw file;
# _epc files are fetched (cs0.e may read them) but never delivered.
STIS = hstcal(
    "stis",
    letter="o",
    title="STIS",
    example="o4er06llq",
    stages=(calibrate("cs0.e", _stis_args),),
    input_suffixes=("asn", "raw", "epc", "tag", "wav"),
    bestrefs_suffixes=("raw", "wav", "tag"),
    members_have_files=False,
    not_delivered=("epc",),
    spectral_suffixes=("x1d", "sx1"),
)

COS_RAW = (
    "rawaccum",
    "rawaccum_a",
    "rawaccum_b",
    "rawacq",
    "rawtag",
    "rawtag_a",
    "rawtag_b",
    "pha_a",
    "pha_b",
)


def _cos_args(dataset: Dataset, inputs: Sequence[Path]) -> list[str]:
    """The association, or the first raw file alone."""
    if dataset.is_association:
        asn = files_with(inputs, "asn")
        if asn:
            return [asn[0].name]
    raws = files_with(inputs, *COS_RAW)
    if not raws:
        raise FileNotFoundError(f"no COS raw file for {dataset.name}")
    return [raws[0].name]


# Raw files get RANDSEED=1 first, for reproducible products.  calcos exits 5 when
# there is nothing to calibrate (e.g. an acquisition other than ACQ/IMAGE).
COS = hstcal(
    "cos",
    letter="l",
    title="COS",
    example="ldfd01010",
    stages=(calibrate("calcos", _cos_args, ok_returncodes=(0, 5)),),
    input_suffixes=("asn", "raw", "epc", "spt", *COS_RAW),
    bestrefs_suffixes=COS_RAW,
    randseed_suffixes=COS_RAW,
    no_preview_suffixes=("rawacq",),
    spectral_suffixes=("x1d", "x1dsum", "x1dsum1", "x1dsum2", "x1dsum3", "x1dsum4"),
)

SVM_INSTRUMENTS = {h.kind: h for h in (ACS, WFC3)}


def _svm_obsset(match: re.Match[str]) -> str:
    """``acs_8ph_01`` -> ``j8ph01``."""
    instrument, proposal, visit = (g.lower() for g in match.groups())
    return SVM_INSTRUMENTS[instrument].letter + proposal + visit  # type: ignore[operator]


def _svm_product(dataset: Dataset, root: str) -> bool:
    """``hst_<propid>_<visit>_<instrument>_<detector>_<filters>_<ipppss[oo]>``."""
    parts = root.split("_")
    return (
        len(parts) >= 7
        and parts[0] == "hst"
        and parts[-1][:6] == dataset.obsset
        and len(parts[-1]) in (6, 8)
    )


SVM = mosaic(
    "svm",
    title="SVM",
    example="acs_8ph_01",
    name_pattern=rf"^({'|'.join(SVM_INSTRUMENTS)})_([a-z0-9]{{3}})_([a-z0-9]{{2}})$",
    obsset=_svm_obsset,
    program="runsinglehap",
    exit_code=ExitCode.SVM_ERROR,
    product_prefix="hst_",
    is_product=_svm_product,
)


def _mvm_product(dataset: Dataset, root: str) -> bool:
    """``hst_<skycell>_...``."""
    parts = root.split("_")
    return len(parts) >= 2 and parts[0] == "hst" and parts[1] == dataset.name


MVM = mosaic(
    "mvm",
    title="MVM",
    example="skycell-p2381x06y09",
    name_pattern=r"^skycell-p\d{4}x\d{2}y\d{2}$",
    program="runmultihap",
    exit_code=ExitCode.MVM_ERROR,
    product_prefix="hst_skycell-",
    is_product=_mvm_product,
    thumb_size=512,
)

ALL = (ACS, WFC3, STIS, COS, SVM, MVM)

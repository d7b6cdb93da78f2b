"""What caldp knows about one kind of dataset, and the two ways of describing one.

A :class:`Handler` is a declarative entry: the dataset names of the kind, the
raw files it needs (and so the MAST product types), its association rule, the
programs that calibrate it and the return codes that are not failures, the files
CRDS assigns references to, the files that get RANDSEED, the products that get
a preview.  :func:`hstcal` describes an instrument whose datasets are
IPPPSSOOT names; :func:`mosaic` a drizzled mosaic whose inputs a poller file
lists.  Nothing here imports the rest of caldp except the exit codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from caldp.exit_codes import ExitCode

if TYPE_CHECKING:
    from caldp.datasets import Dataset

ArgsBuilder = Callable[["Dataset", Sequence[Path]], list[str]]
DEFAULT_THUMB_SIZE = 128
MOSAIC_OK_RETURNCODES = frozenset({0, 55, 65})  # 55, 65: no viable data


@dataclass(frozen=True)
class Stage:
    """One calibration program run."""

    name: str  # "stage1" or "stage2": the step name in logs and metrics
    program: str
    args: ArgsBuilder  # the arguments after the program, from the staged inputs
    exit_code: ExitCode  # the step's code when the program fails
    ok_returncodes: frozenset[int] = frozenset({0})

    def argv(self, dataset: Dataset, inputs: Sequence[Path]) -> list[str]:
        return [self.program, *self.args(dataset, inputs)]


@dataclass(frozen=True)
class Handler:
    """One kind of dataset (the key of :data:`caldp.instruments.HANDLERS`)."""

    kind: str  # handler key and folder of the output tree: "acs"
    title: str  # the INSTRUME keyword of its files (IPPPSSOOT kinds), or "SVM"/"MVM"
    example: str  # a dataset name of this kind, for help and error messages
    stages: tuple[Stage, ...]
    input_suffixes: tuple[str, ...]  # raw input types: <root>_<suffix>.fits
    letter: str | None = None  # first letter of its IPPPSSOOT names (None: a mosaic)
    name_pattern: re.Pattern[str] | None = None  # a mosaic's dataset names (whole, ASCII)
    obsset: Callable[[re.Match[str]], str] | None = None  # a mosaic's observation set
    members_have_files: bool = True  # association members have files of their own
    bestrefs_suffixes: tuple[str, ...] = ()  # the files CRDS assigns references to
    randseed_suffixes: tuple[str, ...] = ()  # these raws get RANDSEED=1 (COS)
    not_delivered: tuple[str, ...] = ()  # suffixes never delivered (STIS _epc)
    # DQ bits of pixels that received too much light (full well, A-to-D): real light,
    # shown bright in previews rather than as bad pixels
    saturation_dq: int = 0
    image_suffixes: tuple[str, ...] = ()  # products that get an image preview
    spectral_suffixes: tuple[str, ...] = ()  # products that get a spectral preview
    no_preview_suffixes: tuple[str, ...] = ()  # raws whose products get no preview (COS acq)
    thumb_size: int = DEFAULT_THUMB_SIZE  # longer side of the preview thumbnails
    product_prefix: str | None = None  # a mosaic's product names start with it
    is_product: Callable[[Dataset, str], bool] | None = None  # a mosaic's product rootnames

    @property
    def mosaic(self) -> bool:
        """SVM/MVM: the inputs are listed in ``<ds>_input.out``."""
        return self.letter is None

    @property
    def run_bestrefs(self) -> bool:
        return bool(self.bestrefs_suffixes)

    @property
    def mast_product_types(self) -> tuple[str, ...]:
        """The MAST ``productSubGroupDescription`` values of the raw inputs."""
        return () if self.mosaic else tuple(s.upper() for s in self.input_suffixes)

    @property
    def preview_suffixes(self) -> tuple[str, ...]:
        return self.image_suffixes + self.spectral_suffixes


def files_with(inputs: Sequence[Path], *suffixes: str) -> list[Path]:
    """The inputs whose name ends in ``_<suffix>.fits`` for one of ``suffixes``, sorted."""
    ends = tuple(f"_{s}.fits" for s in suffixes)
    return sorted((p for p in inputs if p.name.endswith(ends)), key=lambda p: p.name)


def asn_or_raw(dataset: Dataset, inputs: Sequence[Path]) -> list[str]:
    """The single input of calacs.e/calwf3.e/runastrodriz: the association, else the raw."""
    if dataset.is_association:
        asn = files_with(inputs, "asn")
        if asn:
            return [asn[0].name]
    raws = [p for p in files_with(inputs, "raw") if p.name == f"{dataset.name}_raw.fits"]
    if raws:
        return [raws[0].name]
    raise FileNotFoundError(
        f"no {dataset.name}_asn.fits or {dataset.name}_raw.fits among the inputs"
    )


def calibrate(
    program: str, args: ArgsBuilder = asn_or_raw, ok_returncodes: Sequence[int] = (0,)
) -> Stage:
    """Stage 1 of an IPPPSSOOT kind: its calibration program (exit 23 when it fails)."""
    return Stage("stage1", program, args, ExitCode.STAGE1_ERROR, frozenset(ok_returncodes))


def _drizzle_args(dataset: Dataset, inputs: Sequence[Path]) -> list[str]:
    return ["-n", "1", *asn_or_raw(dataset, inputs)]


DRIZZLE = Stage("stage2", "runastrodriz", _drizzle_args, ExitCode.STAGE2_ERROR)


def hstcal(
    kind: str,
    *,
    letter: str,
    title: str,
    example: str,
    stages: Sequence[Stage],
    input_suffixes: Sequence[str],
    bestrefs_suffixes: Sequence[str] = ("raw",),
    **details,
) -> Handler:
    """An instrument whose datasets are IPPPSSOOT names starting with ``letter``."""
    return Handler(
        kind=kind,
        title=title,
        example=example,
        letter=letter.lower(),
        stages=tuple(stages),
        input_suffixes=tuple(input_suffixes),
        bestrefs_suffixes=tuple(bestrefs_suffixes),
        **details,
    )


def _poller_args(dataset: Dataset, inputs: Sequence[Path]) -> list[str]:  # noqa: ARG001
    return [f"{dataset.name}_input.out"]


def mosaic(
    kind: str,
    *,
    title: str,
    example: str,
    name_pattern: str,
    program: str,
    exit_code: ExitCode,
    product_prefix: str,
    is_product: Callable[[Dataset, str], bool],
    obsset: Callable[[re.Match[str]], str] | None = None,
    thumb_size: int = DEFAULT_THUMB_SIZE,
) -> Handler:
    """A drizzled mosaic: ``program <ds>_input.out`` on the already calibrated FLC/FLT
    files the poller file lists (no bestrefs); its drizzled products get previews."""
    return Handler(
        kind=kind,
        title=title,
        example=example,
        # ASCII: else \d matches any script's digits, and ſ (long s) matches s ignoring case
        name_pattern=re.compile(name_pattern, re.IGNORECASE | re.ASCII),
        obsset=obsset,
        stages=(Stage("stage1", program, _poller_args, exit_code, MOSAIC_OK_RETURNCODES),),
        input_suffixes=("flc", "flt"),
        image_suffixes=("drc", "drz"),
        thumb_size=thumb_size,
        product_prefix=product_prefix,
        is_product=is_product,
    )

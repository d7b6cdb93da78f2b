"""Instrument handlers, one small declarative description per dataset kind.

``HANDLERS[kind]`` says which raw files belong to a dataset, which programs
calibrate it and how, which return codes are not failures, and the special
cases (COS RANDSEED, STIS raw/wav selection, files not delivered).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from caldp.datasets import Dataset
from caldp.exit_codes import ExitCode

ArgvBuilder = Callable[[Dataset, Sequence[Path]], list[str]]


@dataclass(frozen=True)
class Stage:
    """One calibration program run."""

    name: str  # "stage1" or "stage2"
    argv: ArgvBuilder  # builds the command line from the staged inputs
    exit_code: ExitCode  # the step's code when the program fails
    ok_returncodes: frozenset[int] = frozenset({0})


@dataclass(frozen=True)
class Handler:
    kind: str
    title: str  # e.g. "ACS"
    input_suffixes: tuple[str, ...]  # raw input types: <root>_<suffix>.fits
    stages: tuple[Stage, ...]
    reference_variable: str | None = None  # jref, iref, oref, lref
    bestrefs_suffixes: tuple[str, ...] = ("raw",)  # the files CRDS assigns references to
    run_bestrefs: bool = True
    randseed_suffixes: tuple[str, ...] = ()  # these raws get RANDSEED=1 (COS)
    not_delivered: tuple[str, ...] = ()  # suffixes never delivered (STIS _epc)
    mosaic: bool = False  # SVM/MVM: inputs are listed in <ds>_input.out
    # DQ bits of pixels that received too much light (full well, A-to-D): real light,
    # shown bright in previews rather than as bad pixels
    saturation_dq: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)


def files_with(inputs: Sequence[Path], *suffixes: str) -> list[Path]:
    """The inputs whose name ends in ``_<suffix>.fits`` for one of ``suffixes``, sorted."""
    ends = tuple(f"_{s}.fits" for s in suffixes)
    return sorted((p for p in inputs if p.name.endswith(ends)), key=lambda p: p.name)


def asn_or_raw(dataset: Dataset, inputs: Sequence[Path]) -> str:
    """The single input of calacs.e/calwf3.e/runastrodriz: the association, else the raw."""
    if dataset.is_association:
        asn = files_with(inputs, "asn")
        if asn:
            return asn[0].name
    raws = [p for p in files_with(inputs, "raw") if p.name == f"{dataset.name}_raw.fits"]
    if raws:
        return raws[0].name
    raise FileNotFoundError(
        f"no {dataset.name}_asn.fits or {dataset.name}_raw.fits among the inputs"
    )


def _registry() -> dict[str, Handler]:
    from caldp.instruments import acs, cos, mvm, stis, svm, wfc3

    return {m.HANDLER.kind: m.HANDLER for m in (acs, wfc3, stis, cos, svm, mvm)}


HANDLERS: dict[str, Handler] = _registry()


def handler_for(dataset: Dataset) -> Handler:
    return HANDLERS[dataset.kind]


def saturation_dq(instrume: str) -> int:
    """The saturation DQ bits of the instrument named by a header's ``INSTRUME`` (0: none known)."""
    name = instrume.strip().upper()
    return next((h.saturation_dq for h in HANDLERS.values() if h.title.upper() == name), 0)

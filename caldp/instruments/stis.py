"""STIS: cs0.e -tv on the raw files, or on the _wav files when there are no raws.

``_epc`` files are fetched (cs0.e may read them) but never delivered.
"""

from collections.abc import Sequence
from pathlib import Path

from caldp.datasets import Dataset
from caldp.exit_codes import ExitCode
from caldp.instruments import Handler, Stage, files_with


def stage1_argv(dataset: Dataset, inputs: Sequence[Path]) -> list[str]:
    chosen = files_with(inputs, "raw") or files_with(inputs, "wav")
    if not chosen:
        raise FileNotFoundError(f"no _raw.fits or _wav.fits files for {dataset.name}")
    return ["cs0.e", "-tv", *(p.name for p in chosen)]


HANDLER = Handler(
    kind="stis",
    title="STIS",
    input_suffixes=("asn", "raw", "epc", "tag", "wav"),
    reference_variable="oref",
    bestrefs_suffixes=("raw", "wav", "tag"),
    stages=(Stage("stage1", stage1_argv, ExitCode.STAGE1_ERROR),),
    not_delivered=("epc",),
)

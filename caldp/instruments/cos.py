"""COS: calcos on the association, or on the first raw file alone.

Raw files get RANDSEED=1 first, for reproducible products.  calcos exits 5
when there is nothing to calibrate (e.g. an acquisition other than ACQ/IMAGE):
that is not a failure.
"""

from collections.abc import Sequence
from pathlib import Path

from caldp.datasets import Dataset
from caldp.exit_codes import ExitCode
from caldp.instruments import Handler, Stage, files_with

RAW_SUFFIXES = (
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


def stage1_argv(dataset: Dataset, inputs: Sequence[Path]) -> list[str]:
    if dataset.is_association:
        asn = files_with(inputs, "asn")
        if asn:
            return ["calcos", asn[0].name]
    raws = files_with(inputs, *RAW_SUFFIXES)
    if not raws:
        raise FileNotFoundError(f"no COS raw file for {dataset.name}")
    return ["calcos", raws[0].name]


HANDLER = Handler(
    kind="cos",
    title="COS",
    input_suffixes=("asn", "raw", "epc", "spt", *RAW_SUFFIXES),
    reference_variable="lref",
    bestrefs_suffixes=RAW_SUFFIXES,
    stages=(Stage("stage1", stage1_argv, ExitCode.STAGE1_ERROR, frozenset({0, 5})),),
    randseed_suffixes=RAW_SUFFIXES,
)

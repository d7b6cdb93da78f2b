"""WFC3: calwf3.e on the association or raw, then runastrodriz."""

from caldp.exit_codes import ExitCode
from caldp.instruments import Handler, Stage, asn_or_raw

HANDLER = Handler(
    kind="wfc3",
    title="WFC3",
    input_suffixes=("asn", "raw"),
    saturation_dq=256
    | 2048,  # full-well saturation; UVIS A-to-D saturation, IR signal in zero read
    reference_variable="iref",
    stages=(
        Stage(
            "stage1", lambda ds, inputs: ["calwf3.e", asn_or_raw(ds, inputs)], ExitCode.STAGE1_ERROR
        ),
        Stage(
            "stage2",
            lambda ds, inputs: ["runastrodriz", "-n", "1", asn_or_raw(ds, inputs)],
            ExitCode.STAGE2_ERROR,
        ),
    ),
)

"""SVM (single-visit mosaic): runsinglehap on the poller file.

Inputs are the poller file ``<ds>_input.out`` and the FLC files it lists, which
are already calibrated: no bestrefs.  55 and 65 mean "no viable data".
"""

from caldp.exit_codes import ExitCode
from caldp.instruments import Handler, Stage

HANDLER = Handler(
    kind="svm",
    title="SVM",
    input_suffixes=("flc", "flt"),
    stages=(
        Stage(
            "stage1",
            lambda ds, inputs: ["runsinglehap", f"{ds.name}_input.out"],
            ExitCode.SVM_ERROR,
            frozenset({0, 55, 65}),
        ),
    ),
    run_bestrefs=False,
    mosaic=True,
)

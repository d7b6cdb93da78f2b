"""Which part of an installation provides each optional library and program.

``pip install .`` gives caldp's core; the rest comes with an extra of the
package or with the Docker image (whose base image brings hstcal).  A missing
piece is reported with where to get it (:func:`hint`), keeping its step's exit
code.
"""

from __future__ import annotations

EXTRAS = {
    # libraries (top-level module names) and programs -> the extra that installs them
    "calcos": "cal",
    "drizzlepac": "cal",
    "runastrodriz": "cal",
    "runsinglehap": "cal",
    "runmultihap": "cal",
    "boto3": "aws",
    "botocore": "aws",
    "astroquery": "astroquery",
    "PIL": "previews",
    "matplotlib": "previews",
    "spec_plots": "previews",
}
HSTCAL = ("calacs.e", "calwf3.e", "cs0.e")  # not on PyPI: STScI's base image has them
IMAGE = "caldp's Docker image"


def hint(name: str) -> str:
    """Where ``name`` (a module or a program) comes from, or "" if caldp does not know."""
    if name in HSTCAL:
        return (
            f"{name} is part of hstcal, which is not on PyPI: it comes with STScI's "
            f"calibration base image ({IMAGE}), or build hstcal and put it on PATH"
        )
    top = name.split(".")[0]  # a module's package
    extra = EXTRAS.get(top)
    if extra is None:
        return ""
    return f"{top} comes with caldp's '{extra}' extra (pip install 'caldp[{extra}]') or {IMAGE}"


def missing(exc: BaseException) -> str:
    """The hint for a library or program that is not installed, else ""."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return hint(exc.name)
    if isinstance(exc, FileNotFoundError) and isinstance(exc.filename, str):
        return hint(exc.filename)
    return ""

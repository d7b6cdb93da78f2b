"""STAND-IN for tests, never shipped: the calibration programs' stand-ins.

``calacs.e``, ``calwf3.e`` and ``cs0.e`` (hstcal) cannot be installed here, and
``runastrodriz``, ``runsinglehap`` and ``runmultihap`` (drizzlepac) need
reference files and catalogues that tests do not have. The executables in this
folder stand in for them: same command lines, exit statuses, product names and
trailers, small valid FITS products, and faults on demand through environment
variables (documented in ``_standin.py``).

Put them first on PATH with :func:`standin_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

STANDIN_DIR: Path = Path(__file__).resolve().parent

PROGRAMS: tuple[str, ...] = (
    "calacs.e",
    "calwf3.e",
    "cs0.e",
    "runastrodriz",
    "runsinglehap",
    "runmultihap",
)


def standin_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: ``os.environ``) with STANDIN_DIR first on PATH."""
    env = dict(os.environ if base is None else base)
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != str(STANDIN_DIR)]
    env["PATH"] = os.pathsep.join([str(STANDIN_DIR), *rest])
    return env

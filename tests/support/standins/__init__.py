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
import re
import shutil
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


# The instruments whose programs are stand-ins; COS's calcos is real.
STANDIN_INSTRUMENTS = ("acs", "wfc3", "stis")


def make_standin_crds_cache(crds_cache: Path, root: Path) -> Path:
    """At ``root``: the CRDS cache ``crds_cache`` (flat), plus an empty file for every ACS,
    WFC3 and STIS reference its rules name.  The stand-ins open each reference their
    input headers name, as the real programs do; an empty file is enough for them.  COS
    gets none: real calcos reads its references and is left to fail without them."""
    shutil.copytree(crds_cache / "config", root / "config")
    shutil.copytree(crds_cache / "references", root / "references")
    (root / "mappings").mkdir()
    (root / "mappings" / "hst").symlink_to(crds_cache / "mappings" / "hst")
    names: set[str] = set()
    for rules in sorted((crds_cache / "mappings" / "hst").glob("hst_*.rmap")):
        if rules.name.split("_")[1] in STANDIN_INSTRUMENTS:
            names.update(re.findall(r"'([a-z0-9_]+\.fits)'", rules.read_text()))
    folder = root / "references" / "hst"
    for name in sorted(names):
        path = folder / name
        if not path.exists():
            path.touch()
    return root

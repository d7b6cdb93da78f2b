"""Best reference files from CRDS, and the reference folders the programs read.

The ``crds`` library assigns reference file names into the raw headers
(``BIASFILE = 'jref$m4r1753rj_bia.fits'``).  The calibration programs then
resolve ``jref$`` and friends through environment variables naming folders.
An error count from CRDS is a failure, never a warning.
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from caldp.errors import ReferencesError

log = logging.getLogger("caldp.bestrefs")

# Reference-path variables of the HST calibration programs and their instrument folders.
REFERENCE_VARIABLES = {
    "iref": "wfc3",
    "jref": "acs",
    "oref": "stis",
    "lref": "cos",
    "nref": "nicmos",
    "uref": "wfpc2",
}
REFERENCE_VALUE_RE = re.compile(r"^([a-z]ref)\$(\S+)$")


class BestrefsError(ReferencesError):
    """CRDS could not assign reference files."""


@dataclass
class BestrefsResult:
    references: dict[str, str] = field(default_factory=dict)  # file name -> variable


@dataclass
class Located:
    """Where the programs find their references: one folder per variable."""

    dirs: dict[str, str]  # variable -> folder ending in "/"
    missing: list[str] = field(default_factory=list)  # referenced files found in no folder


def cache_mode(crds_path: Path) -> str:
    """``flat`` or ``instrument``: how references are laid out in the cache.

    No marker means ``instrument``, as for CRDS, which writes that marker into a
    writable cache that has none.
    """
    marker = crds_path / "config" / "hst" / "ref_cache_subdir_mode"
    try:
        mode = marker.read_text().strip()
    except OSError:
        return "instrument"
    return "flat" if mode == "flat" else "instrument"


def _layout_dirs(crds_path: Path, mode: str) -> dict[str, str]:
    root = crds_path / "references" / "hst"
    if mode == "flat":
        return {var: f"{root}/" for var in REFERENCE_VARIABLES}
    return {var: f"{root / sub}/" for var, sub in REFERENCE_VARIABLES.items()}


def reference_dirs(crds_path: Path) -> dict[str, str]:
    """The environment values (ending in ``/``) of ``iref``, ``jref``, ... for this cache."""
    return _layout_dirs(crds_path, cache_mode(crds_path))


def locate(references: Mapping[str, str], crds_path: Path) -> Located:
    """The folder of each variable, where its referenced files actually are.

    The cache's layout decides, unless the files a variable names are all in the
    other layout's folder (a cache without a marker, laid out flat, or the other
    way round).  Files found in neither are ``missing``; their variable keeps the
    layout's folder.
    """
    mode = cache_mode(crds_path)
    dirs = _layout_dirs(crds_path, mode)
    other = _layout_dirs(crds_path, "instrument" if mode == "flat" else "flat")
    missing: list[str] = []
    for var in sorted(set(references.values())):
        names = sorted(name for name, v in references.items() if v == var)
        absent = [name for name in names if not os.path.isfile(dirs[var] + name)]
        if absent and all(os.path.isfile(other[var] + name) for name in names):
            log.info(
                "%s: its %d file(s) are in %s, not in the cache layout's %s",
                var,
                len(names),
                other[var],
                dirs[var],
            )
            dirs[var] = other[var]
        else:
            missing += absent
    return Located(dirs=dirs, missing=sorted(missing))


def operational_context(crds_path: Path) -> str | None:
    """The operational context recorded in the cache's server_config, if any."""
    config = crds_path / "config" / "hst" / "server_config"
    try:
        info = ast.literal_eval(config.read_text())
        return str(info["operational_context"])
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        return None


def choose_context(crds_path: Path, env: Mapping[str, str], pinned: str | None = None) -> str:
    """Pinned (S3 mode) > ``CRDS_CONTEXT`` > the cache's operational context."""
    for source, value in (
        ("pinned by the operator", pinned),
        ("CRDS_CONTEXT", env.get("CRDS_CONTEXT")),
        ("the cache's operational context", operational_context(crds_path)),
    ):
        if value:
            log.info("CRDS context %s (%s)", value, source)
            return value
    raise BestrefsError(
        f"no CRDS context: CRDS_CONTEXT is not set and {crds_path} has no "
        "config/hst/server_config with an operational context"
    )


# Packages CRDS imports when it is imported, which assigning best references to HST
# files from a cache never uses: the HTTP client of its server (``requests``),
# astropy's tables (for table effects) and asdf (JWST's format, for certifying).
# They are loaded when first used, not before: about 40% of what ``import crds``
# loads and costs (1041 modules -> 621, with astropy.io.fits).
DEFERRED_BY_CRDS = ("requests", "astropy.table", "asdf")
_crds_lock = threading.Lock()


class _Deferring(importlib.abc.MetaPathFinder):
    """Gives the modules named in ``names`` a loader that runs them on first use."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: object = None):
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def load_crds() -> ModuleType:
    """Import ``crds.bestrefs``, the packages of :data:`DEFERRED_BY_CRDS` loaded only when
    used (they are loaded as usual if something imported them before)."""
    with _crds_lock:
        if "crds.bestrefs" in sys.modules:
            return sys.modules["crds.bestrefs"]
        finder = _Deferring(name for name in DEFERRED_BY_CRDS if name not in sys.modules)
        sys.meta_path.insert(0, finder)
        try:
            return importlib.import_module("crds.bestrefs")
        finally:
            sys.meta_path.remove(finder)


def assign(paths: Sequence[Path], context: str, *, sync: bool) -> int:
    """Write best references into the headers of ``paths``; return CRDS's error count."""
    # CRDS calls gc.collect() many times; freezing the heap we already have, CRDS's
    # own modules included, makes each call cheap (measured for four ACS raws: 4.6 s
    # unfrozen, 0.27 s frozen before importing CRDS, 0.07 s frozen after).
    assign_bestrefs = load_crds().assign_bestrefs

    gc.freeze()
    try:
        try:
            errors = assign_bestrefs(
                [str(p) for p in paths], context=context, sync_references=sync, verbosity=-1
            )
        except SystemExit as exc:  # CRDS exits when it cannot load the context
            raise BestrefsError(f"CRDS could not load context {context}: exit {exc.code}") from exc
    finally:
        gc.unfreeze()
    return int(errors or 0)


def referenced_files(paths: Sequence[Path]) -> dict[str, str]:
    """Reference file names in the primary headers (``jref$x.fits`` -> {x.fits: jref})."""
    from astropy.io import fits

    found: dict[str, str] = {}
    for path in paths:
        header = fits.getheader(path, 0)
        for value in header.values():
            if isinstance(value, str):
                m = REFERENCE_VALUE_RE.match(value.strip())
                if m and m.group(1) in REFERENCE_VARIABLES:
                    found[m.group(2)] = m.group(1)
    return found


def instruments(paths: Sequence[Path]) -> list[str]:
    """The instruments (``INSTRUME``) named in the primary headers of ``paths``."""
    from astropy.io import fits

    found = {str(fits.getheader(path, 0).get("INSTRUME", "")).strip().upper() for path in paths}
    return sorted(found - {""})


def check_cache(crds_path: Path, origin: str = "") -> None:
    """Raise :class:`BestrefsError` unless ``crds_path`` holds a CRDS cache's HST rules.

    ``origin`` says where ``CRDS_PATH`` came from, for the message."""
    if any((crds_path / sub / "hst").is_dir() for sub in ("mappings", "pickles")):
        return
    raise BestrefsError(
        f"{crds_path} is not a CRDS cache (no mappings/hst or pickles/hst folder)"
        + (f"; CRDS_PATH is {origin}" if origin else "")
        + ". Set CRDS_PATH to a CRDS cache, or off-site use the profile caldp-config-offsite "
        "(a cache at $CRDS_PATH or ~/crds_cache, filled from the CRDS server) or "
        "caldp-config-local (a local cache, no server)"
    )


def run(paths: Sequence[Path], crds_path: Path, context: str, *, sync: bool) -> BestrefsResult:
    """Assign best references with ``context``; raise :class:`BestrefsError` on any CRDS error."""
    if not paths:
        raise BestrefsError("no files to assign best references to")
    check_cache(crds_path)
    errors = assign(paths, context, sync=sync)
    if errors:
        raise BestrefsError(f"CRDS reported {errors} error(s) assigning best references")
    refs = referenced_files(paths)
    log.info("CRDS assigned %d reference files with context %s", len(refs), context)
    return BestrefsResult(references=refs)

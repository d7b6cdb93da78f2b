"""Spectral previews of STIS and COS products, made by the archive's own previewer.

``spec_plots.make_hst_spec_previews`` (PyPI ``spec-plots``) is called in this
process with the archive's settings (``-t png fits``): it writes ``<base>.png``,
``<base>_thumb.png`` and, for COS, ``<base>_prev.fits`` (spec-plots writes no
FITS preview for STIS).  Around each call this module selects the
non-interactive Agg backend, closes the figures spec-plots leaves open (it
never closes them, so memory would grow file after file) and frees their
memory, turns its
``sys.exit`` on malformed input into an error, and sends what it prints and
the warnings it raises to the log (debug level) instead of stdout/stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import logging
import warnings
from pathlib import Path

from caldp.previews.images import base_name

log = logging.getLogger("caldp.previews")

OUTPUT_TYPES = ["png", "fits"]


class SpectralPreviewError(RuntimeError):
    """spec-plots could not make the preview."""


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def release_memory() -> None:
    """Free what one spec-plots call left behind: its closed figures sit in reference
    cycles with their renderers until a full collection (memory grew file after file),
    and glibc keeps freed heap pages unless asked to give them back."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def expected_outputs(path: Path, out_dir: Path, instrument: str) -> list[Path]:
    """The files spec-plots writes for this product."""
    base = base_name(path)
    names = [f"{base}.png", f"{base}_thumb.png"]
    if instrument.upper() == "COS":
        names.append(f"{base}_prev.fits")
    return [out_dir / name for name in names]


def _instrument(path: Path) -> str:
    from astropy.io import fits

    return str(fits.getval(path, "INSTRUME", 0)).strip().upper()


def make_spectral_previews(path: Path, out_dir: Path) -> list[Path]:
    """Write the spectral previews of one STIS/COS product; return the files written."""
    pyplot = _pyplot()
    from spec_plots.make_hst_spec_previews import make_hst_spec_previews

    instrument = _instrument(path)
    if instrument not in ("STIS", "COS"):
        raise SpectralPreviewError(f"INSTRUME is {instrument!r}, not STIS or COS")
    expected = expected_outputs(path, out_dir, instrument)
    for stale in expected:
        stale.unlink(missing_ok=True)
    open_before = set(pyplot.get_fignums())
    printed = io.StringIO()
    caught: list[warnings.WarningMessage] = []
    try:
        with contextlib.redirect_stdout(printed), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make_hst_spec_previews(str(path), output_path=str(out_dir), output_type=OUTPUT_TYPES)
    except SystemExit as exc:  # spec-plots exits on input it cannot read
        raise SpectralPreviewError(f"spec-plots gave up: {exc.code}") from None
    finally:
        for number in set(pyplot.get_fignums()) - open_before:
            pyplot.close(number)
        release_memory()
        for line in printed.getvalue().splitlines():
            if line.strip():
                log.debug("spec-plots: %s", line.rstrip())
        for warning in caught:
            log.debug("spec-plots warning: %s: %s", warning.category.__name__, warning.message)
    missing = [p.name for p in expected if not p.exists()]
    if missing:
        raise SpectralPreviewError(f"spec-plots did not write {', '.join(missing)}")
    return expected

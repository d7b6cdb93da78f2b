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

spec-plots measures how much of each plot its line covers (to draw a dense line
transparent) by counting pixels in a Python loop over each byte of the 1024 x
1024 canvas, after picking the RGB bytes with an index mask of 64-bit integers
(67 MB at once: most of the step's peak memory).  :func:`covering_fraction` does
the same with numpy on a view of the canvas, and replaces spec-plots' function
(:func:`use_covering_fraction`): the same figure changes and the same number, so
the same files, byte for byte.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import logging
import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def count_blue_red(pixels: Any) -> tuple[int, int]:
    """Of an (N, 3) array of RGB pixels, the non-grey ones with blue (``b > 0``) and,
    tested first, the red ones (``r > 0`` and ``b == 0``): (blue, red), as spec-plots
    counts the plotted and the background pixels."""
    import numpy as np

    r, g, b = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    coloured = (r != g) | (r != b)
    red = coloured & (r > 0) & (b == 0)
    blue = coloured & ~red & (b > 0)
    return int(np.count_nonzero(blue)), int(np.count_nonzero(red))


def covering_fraction(fig: Any, subplots: Any, subplot_num: int, optimize: bool = True) -> float:
    """spec-plots' ``calc_covering_fraction`` with numpy: the percentage of the
    plot area of ``subplots[subplot_num]`` that its line covers.

    As spec-plots does: only that subplot visible, its background red, the canvas
    drawn; with ``optimize`` only the subplot's share of the canvas (its rows of
    pixels, the canvas cut in ``len(subplots)`` equal byte ranges of whole pixels)
    is counted; then all subplots visible again after the last one, and that
    subplot's background white.
    """
    import numpy as np

    for i, subplot in enumerate(subplots):
        subplot.set_visible(i == subplot_num)
    subplots[subplot_num].set_facecolor("red")
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].reshape(-1, 3)
    if optimize:
        rgb_bytes = 3 * len(pixels)
        per_subplot = math.ceil(rgb_bytes / len(subplots))
        per_subplot += -per_subplot % 3
        start = subplot_num * per_subplot // 3
        end = start + per_subplot // 3 if subplot_num < len(subplots) - 1 else len(pixels)
        pixels = pixels[start:end]
    blue, red = count_blue_red(pixels)
    if subplot_num == len(subplots) - 1:
        for subplot in subplots:
            subplot.set_visible(True)
    subplots[subplot_num].set_facecolor("white")
    return float(blue) / float(red + blue) * 100.0


_ORIGINAL = "spec_plots.utils.specutils.calc_covering_fraction"  # the module defining it


def use_covering_fraction() -> None:
    """Make every spec-plots module that calls ``calc_covering_fraction`` call
    :func:`covering_fraction` instead (the modules import the function by name)."""
    original = getattr(sys.modules.get(_ORIGINAL), "calc_covering_fraction", None)
    if original is None:
        return
    for name, module in list(sys.modules.items()):
        if (
            name.startswith("spec_plots.")
            and name != _ORIGINAL  # where spec-plots' own stays
            and getattr(module, "calc_covering_fraction", None) is original
        ):
            module.calc_covering_fraction = covering_fraction


def release_memory() -> None:
    """Free what one spec-plots call left behind: its closed figures sit in reference
    cycles with their renderers until a full collection (memory grew file after file),
    matplotlib's cache of rendered math text (the axis labels) keeps every figure's
    entries and the fonts they drew with, and glibc keeps freed heap pages unless
    asked to give them back."""
    from matplotlib import mathtext

    parse_cache = getattr(mathtext.MathTextParser._parse_cached, "cache_clear", None)
    if parse_cache is not None:
        parse_cache()
    for _ in range(3):  # what the first pass frees can leave more cycles behind
        if not gc.collect():
            break
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


@contextlib.contextmanager
def collecting_only_new_objects() -> Iterator[None]:
    """While inside, the garbage collector looks only at objects made inside: those
    from before are set aside (``gc.freeze``) and given back at the end, so that the
    full collections after each file do not walk the whole process again (about
    100,000 objects of astropy, matplotlib and caldp)."""
    if gc.get_freeze_count():  # someone else froze objects: leave that as it is
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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

    use_covering_fraction()
    instrument = _instrument(path)
    if instrument not in ("STIS", "COS"):
        raise SpectralPreviewError(f"INSTRUME is {instrument!r}, not STIS or COS")
    expected = expected_outputs(path, out_dir, instrument)
    for stale in expected:
        stale.unlink(missing_ok=True)
    open_before = set(pyplot.get_fignums())
    printed = io.StringIO()
    caught: list[warnings.WarningMessage] = []
    with collecting_only_new_objects():
        try:
            with (
                contextlib.redirect_stdout(printed),
                warnings.catch_warnings(record=True) as caught,
            ):
                warnings.simplefilter("always")
                make_hst_spec_previews(
                    str(path), output_path=str(out_dir), output_type=OUTPUT_TYPES
                )
        except SystemExit as exc:  # spec-plots exits on input it cannot read
            raise SpectralPreviewError(f"spec-plots gave up: {exc.code}") from None
        finally:
            for number in set(pyplot.get_fignums()) - open_before:
                pyplot.close(number)
            for line in printed.getvalue().splitlines():
                if line.strip():
                    log.debug("spec-plots: %s", line.rstrip())
            for warning in caught:
                log.debug("spec-plots warning: %s: %s", warning.category.__name__, warning.message)
            caught.clear()
            release_memory()
    missing = [p.name for p in expected if not p.exists()]
    if missing:
        raise SpectralPreviewError(f"spec-plots did not write {', '.join(missing)}")
    return expected

"""Pivot wavelengths of the ACS and WFC3 filters (package data ``caldp/data/filter_pivots.csv``).

Used to order the filters of a colour preview: the longest pivot wavelength
is shown red, the shortest blue.
"""

from __future__ import annotations

import csv
import functools
import io
from importlib import resources

# Filter-wheel positions that pass light unchanged or block it: not a bandpass.
NOT_BANDPASSES = ("CLEAR", "BLOCK", "N/A", "NONE", "ANY")

# Polarizer names in headers and HAP file names -> the name of their throughput row.
POLARIZERS = {
    "POL0UV": "POL_UV",
    "POL60UV": "POL_UV",
    "POL120UV": "POL_UV",
    "POL0V": "POL_V",
    "POL60V": "POL_V",
    "POL120V": "POL_V",
}


@functools.cache
def pivot_table() -> dict[tuple[str, str, str], float]:
    """``(instrument, detector, filter) -> pivot wavelength in Angstrom``; detector ``*`` = any."""
    text = resources.files("caldp").joinpath("data/filter_pivots.csv").read_text("utf-8")
    rows = (line for line in io.StringIO(text) if line.strip() and not line.startswith("#"))
    table = {}
    for row in csv.DictReader(rows):
        key = (row["instrument"].upper(), row["detector"].upper(), row["filter"].upper())
        table[key] = float(row["pivot_angstrom"])
    return table


def _normalise(name: str) -> str:
    name = name.strip().upper()
    return POLARIZERS.get(name, name)


def is_bandpass(name: str) -> bool:
    """False for clear, blocking and empty filter-wheel positions."""
    name = name.strip().upper()
    return bool(name) and not name.startswith(NOT_BANDPASSES)


def pivot_wavelength(instrument: str, detector: str, filter_name: str) -> float | None:
    """Pivot wavelength (Angstrom) of one filter, or None when it is not in the table.

    The detector's own value is used when there is one, otherwise the
    instrument's value for any detector (e.g. an HRC filter used with WFC).
    """
    table = pivot_table()
    instrument, detector, name = instrument.upper(), detector.upper(), _normalise(filter_name)
    if (instrument, detector, name) in table:
        return table[(instrument, detector, name)]
    if (instrument, "*", name) in table:
        return table[(instrument, "*", name)]
    for (inst, _det, filt), value in table.items():
        if inst == instrument and filt == name:
            return value
    return None


def filter_combination_pivot(instrument: str, detector: str, filters: str) -> float | None:
    """Pivot wavelength of a filter combination as written in HAP file names.

    ``filters`` is e.g. ``f606w``, ``f606w-pol60v`` or ``f555w-f658n``.  Clear
    and blocking positions are ignored; a polarizer combined with a filter
    counts as the filter; of two spectral filters the first one in the name
    is used.
    """
    names = [n for n in filters.replace(";", "-").split("-") if is_bandpass(n)]
    spectral = [n for n in names if _normalise(n) not in POLARIZERS.values()]
    for name in spectral or names:
        value = pivot_wavelength(instrument, detector, name)
        if value is not None:
            return value
    return None

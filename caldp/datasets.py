"""Dataset names: which kind of dataset a name is, and what follows from it.

Three kinds of names (CONTRACT section 2):

* IPPPSSOOT, e.g. ``j8cb010b0``: the first letter is the instrument; a name
  ending in ``0`` is an association.
* SVM (single-visit mosaic), e.g. ``acs_8ph_01`` -> observation set ``j8ph01``.
* MVM (multi-visit mosaic), e.g. ``skycell-p2381x06y09``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IPPPSSOOT_RE = re.compile(r"^[IJLOijlo][a-zA-Z0-9]{8}$")
ANY_IPPPSSOOT_RE = re.compile(r"^[A-Za-z][a-zA-Z0-9]{8}$")
SVM_RE = re.compile(r"^(acs|wfc3)_([a-z0-9]{3})_([a-z0-9]{2})$", re.IGNORECASE)
MVM_RE = re.compile(r"^skycell-p\d{4}x\d{2}y\d{2}$", re.IGNORECASE)

# First letter of an IPPPSSOOT -> instrument folder name, for those caldp calibrates.
CALIBRATED = {"j": "acs", "i": "wfc3", "o": "stis", "l": "cos"}

# Known to the archive but not calibrated by caldp.
NOT_CALIBRATED = {
    "u": "WFPC2",
    "n": "NICMOS",
    "w": "WFPC",
    "x": "FOC",
    "y": "FOS",
    "z": "HRS",
    "v": "HSP",
    "f": "FGS",
    "e": "engineering data",
}

SVM_LETTER = {"acs": "j", "wfc3": "i"}


class DatasetNameError(ValueError):
    """The dataset name is not one caldp can process."""


@dataclass(frozen=True)
class Dataset:
    """A parsed dataset name.

    ``name`` is the name as caldp uses it in file names (lower case);
    ``kind`` is the handler key: ``acs``, ``wfc3``, ``stis``, ``cos``, ``svm`` or
    ``mvm``, which is also the instrument folder of the output tree.
    """

    name: str
    kind: str
    is_association: bool = False
    obsset: str | None = None  # SVM only: e.g. "j8ph01"
    svm_instrument: str | None = None  # SVM only: "acs" or "wfc3"

    @property
    def instrument(self) -> str:
        """The folder name under ``data/`` in the output tree."""
        return self.kind

    @property
    def is_mosaic(self) -> bool:
        return self.kind in ("svm", "mvm")

    def __str__(self) -> str:
        return self.name


def parse(name: str) -> Dataset:
    """Return the :class:`Dataset` for ``name`` or raise :class:`DatasetNameError`."""
    if not isinstance(name, str) or not name:
        raise DatasetNameError("the dataset name is empty")
    if name != name.strip() or any(c in name for c in "/\\\0") or name in (".", ".."):
        raise DatasetNameError(f"invalid dataset name {name!r}: path characters are not allowed")
    if IPPPSSOOT_RE.match(name):
        low = name.lower()
        return Dataset(name=low, kind=CALIBRATED[low[0]], is_association=low.endswith("0"))
    if ANY_IPPPSSOOT_RE.match(name) and name[0].lower() in NOT_CALIBRATED:
        instrument = NOT_CALIBRATED[name[0].lower()]
        raise DatasetNameError(
            f"dataset {name!r} is {instrument} data, which caldp does not calibrate "
            "(caldp calibrates ACS, WFC3, STIS and COS, and ACS/WFC3 mosaics)"
        )
    m = SVM_RE.match(name)
    if m:
        instrument, prop, visit = (g.lower() for g in m.groups())
        return Dataset(
            name=name.lower(),
            kind="svm",
            obsset=SVM_LETTER[instrument] + prop + visit,
            svm_instrument=instrument,
        )
    if MVM_RE.match(name):
        return Dataset(name=name.lower(), kind="mvm")
    raise DatasetNameError(
        f"unrecognised dataset name {name!r}: expected an IPPPSSOOT such as j8cb010b0 "
        "(ACS J, WFC3 I, STIS O, COS L), an SVM name such as acs_8ph_01 or wfc3_b46_06, "
        "or an MVM name such as skycell-p2381x06y09"
    )

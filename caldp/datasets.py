"""Dataset names: which kind of dataset a name is, and what follows from it.

Three kinds of names (docs/interface.rst, ``caldp-process``):

* IPPPSSOOT, e.g. ``j8cb010b0``: the first letter is the instrument; a name
  ending in ``0`` is an association.
* SVM (single-visit mosaic), e.g. ``acs_8ph_01`` -> observation set ``j8ph01``.
* MVM (multi-visit mosaic), e.g. ``skycell-p2381x06y09``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from caldp import instruments

IPPPSSOOT_RE = re.compile(r"[A-Za-z][a-zA-Z0-9]{8}", re.ASCII)  # the first letter: instrument

# Known to the archive but not calibrated by caldp (the calibrated ones are in caldp.instruments).
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


class DatasetNameError(ValueError):
    """The dataset name is not one caldp can process."""


@dataclass(frozen=True)
class Dataset:
    """A parsed dataset name.

    ``name`` is the name as caldp uses it in file names (lower case);
    ``kind`` is the key of its entry in :data:`caldp.instruments.HANDLERS`
    (``acs``, ``wfc3``, ``stis``, ``cos``, ``svm``, ``mvm``), which is also the
    instrument folder of the output tree.
    """

    name: str
    kind: str
    is_association: bool = False
    obsset: str | None = None  # SVM only: e.g. "j8ph01"

    @property
    def instrument(self) -> str:
        """The folder name under ``data/`` in the output tree."""
        return self.kind

    @property
    def is_mosaic(self) -> bool:
        return instruments.HANDLERS[self.kind].mosaic

    def __str__(self) -> str:
        return self.name


def parse(name: str) -> Dataset:
    """Return the :class:`Dataset` for ``name`` or raise :class:`DatasetNameError`."""
    if not isinstance(name, str) or not name:
        raise DatasetNameError("the dataset name is empty")
    if name != name.strip() or any(c in name for c in "/\\\0") or name in (".", ".."):
        raise DatasetNameError(f"invalid dataset name {name!r}: path characters are not allowed")
    handlers = instruments.HANDLERS.values()
    if IPPPSSOOT_RE.fullmatch(name):
        low = name.lower()
        handler = instruments.by_letter(low[0])
        if handler is not None:
            return Dataset(name=low, kind=handler.kind, is_association=low.endswith("0"))
        if low[0] in NOT_CALIBRATED:
            calibrated = " ".join(h.title for h in handlers if not h.mosaic)
            mosaics = " ".join(h.title for h in handlers if h.mosaic)
            raise DatasetNameError(
                f"dataset {name!r} is {NOT_CALIBRATED[low[0]]} data, which caldp does not "
                f"calibrate (caldp calibrates {calibrated} data and {mosaics} mosaics)"
            )
    for handler in handlers:
        match = handler.name_pattern.fullmatch(name) if handler.name_pattern else None
        if match:
            obsset = handler.obsset(match) if handler.obsset else None
            return Dataset(name=name.lower(), kind=handler.kind, obsset=obsset)
    letters = ", ".join(f"{h.title} {h.letter.upper()}" for h in handlers if h.letter)
    mosaics = ", ".join(f"an {h.title} name such as {h.example}" for h in handlers if h.mosaic)
    raise DatasetNameError(
        f"unrecognised dataset name {name!r}: expected an IPPPSSOOT such as j8cb010b0 "
        f"({letters}), or {mosaics}"
    )

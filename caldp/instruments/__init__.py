"""The registry of dataset kinds: the one place that knows about instruments.

``HANDLERS[kind]`` is the declarative entry of one kind (:mod:`caldp.instruments.hst`
lists them; :mod:`caldp.instruments.model` says what an entry holds).  Dataset
names, MAST product types, association rules, calibration programs, bestrefs,
RANDSEED, delivery and previews all read these entries through the lookups below,
so a new kind is one more entry.
"""

from __future__ import annotations

from caldp.instruments import hst
from caldp.instruments.model import Handler, Stage, asn_or_raw, files_with

HANDLERS: dict[str, Handler] = {h.kind: h for h in hst.ALL}


def handler_for(dataset) -> Handler:
    return HANDLERS[dataset.kind]


def by_letter(letter: str) -> Handler | None:
    """The IPPPSSOOT kind whose names start with ``letter`` (any case)."""
    return next((h for h in HANDLERS.values() if h.letter == letter.lower()), None)


def by_title(instrume: str) -> Handler | None:
    """The IPPPSSOOT kind whose files carry ``INSTRUME = instrume``."""
    wanted = instrume.strip().upper()
    return next((h for h in HANDLERS.values() if not h.mosaic and h.title == wanted), None)


def mosaic_by_product(root: str) -> Handler | None:
    """The mosaic kind whose product names start like ``root`` (the longest prefix wins)."""
    found = [h for h in HANDLERS.values() if h.product_prefix and root.startswith(h.product_prefix)]
    return max(found, key=lambda h: len(h.product_prefix or ""), default=None)


def saturation_dq(instrume: str) -> int:
    """The saturation DQ bits of the instrument named by a header's ``INSTRUME`` (0: none known)."""
    handler = by_title(instrume)
    return handler.saturation_dq if handler else 0


def programs() -> list[str]:
    """Every calibration program, once, in registry order."""
    return list(dict.fromkeys(s.program for h in HANDLERS.values() for s in h.stages))


__all__ = [
    "HANDLERS",
    "Handler",
    "Stage",
    "asn_or_raw",
    "by_letter",
    "by_title",
    "files_with",
    "handler_for",
    "mosaic_by_product",
    "programs",
    "saturation_dq",
]

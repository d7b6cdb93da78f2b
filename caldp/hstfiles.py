"""Readers of the small HST files that say which files make a dataset.

* Association tables ``<ds>_asn.fits``: one row per member, ``MEMNAME`` (the
  rootname), ``MEMTYPE`` (``EXP-...`` for an exposure, ``PROD-...`` for a
  product) and ``MEMPRSNT`` (false for an exposure that was never taken or is not
  in the archive: the calibration programs skip it).
* Poller files ``<ds>_input.out`` of the mosaic programs: the first
  comma-separated field of each line is a file name, which the programs open
  as given, relative to their working folder.

Each is read here only; callers turn :class:`HstFileError` into their own error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class HstFileError(ValueError):
    """An association table or poller file that cannot be used."""


@dataclass(frozen=True)
class Member:
    name: str  # lower-case rootname
    type: str  # upper-case MEMTYPE: EXP-CRJ, PROD-DTH, ...
    present: bool

    @property
    def is_exposure(self) -> bool:
        return self.type.startswith("EXP")


@dataclass(frozen=True)
class Association:
    members: tuple[Member, ...]

    @property
    def exposures(self) -> list[str]:
        """The rootnames of the exposures that are present: the raw files to calibrate."""
        return [m.name for m in self.members if m.is_exposure and m.present]

    @property
    def rootnames(self) -> set[str]:
        """Every rootname the table lists (exposures and products): whose products belong."""
        return {m.name for m in self.members}


def read_association(path: Path) -> Association:
    """The members listed in an association table (a missing MEMPRSNT column: all present)."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            table = hdul[1].data
            names = [str(n).strip().lower() for n in table["MEMNAME"]]
            types = [str(t).strip().upper() for t in table["MEMTYPE"]]
            if "MEMPRSNT" in table.names:
                present = [_true(p) for p in table["MEMPRSNT"]]
            else:
                present = [True] * len(names)
    except (OSError, KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise HstFileError(f"cannot read the association table {Path(path).name}: {exc}") from exc
    return Association(
        tuple(Member(n, t, p) for n, t, p in zip(names, types, present, strict=True) if n)
    )


def _true(value: object) -> bool:
    """MEMPRSNT as FITS stores it: a logical, or (in old tables) 'T'/'F' text."""
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        return text.strip().upper() in ("T", "TRUE", "1")
    return bool(value)


def poller_names(lines: Iterable[str], source: str) -> list[str]:
    """The file names a poller file lists (comments and blank lines skipped).

    The mosaic programs open each name relative to their working folder: only a
    bare file name keeps them on the staged copies, so a path is refused.
    """
    names = []
    for line in lines:
        field = line.split(",", 1)[0].strip()
        if not field or field.startswith("#"):
            continue
        if "/" in field or "\\" in field or field in (".", ".."):
            raise HstFileError(
                f"unusable file name in {source}: {field!r} (a poller file lists bare file names)"
            )
        names.append(field)
    if not names:
        raise HstFileError(f"the poller file {source} lists no files")
    return names


def read_poller(path: Path) -> list[str]:
    """The file names listed in the poller file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HstFileError(f"cannot read the poller file {Path(path).name}: {exc}") from exc
    return poller_names(text.splitlines(), Path(path).name)

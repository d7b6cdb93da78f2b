"""Header keywords written into the working copies of the raw inputs before calibration."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from caldp.errors import InputError

log = logging.getLogger("caldp.headers")

VERSION_KEYWORDS = ("CSYS_VER", "AWSDPVER", "AWSYSVER")
MAX_VERSION_LENGTH = 32  # archive catalogue columns are short
FITS_BLOCK = 2880


class HeaderError(InputError):
    """A FITS input could not be read or updated."""


def version_values(env: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for key in VERSION_KEYWORDS:
        value = (env.get(key) or "UNDEFINED").strip() or "UNDEFINED"
        if len(value) > MAX_VERSION_LENGTH:
            log.warning("%s is longer than %d characters; truncated", key, MAX_VERSION_LENGTH)
            value = value[:MAX_VERSION_LENGTH]
        values[key] = value
    return values


def check_complete(path: Path) -> None:
    """Raise :class:`HeaderError` unless ``path`` is a whole FITS file.

    A FITS file is a whole number of 2880-byte blocks, astropy warns when an
    HDU's header or data runs past the end of the file, and ``NEXTEND`` (where
    present) counts the extensions; a truncated input would otherwise be
    calibrated from the HDUs that happen to be complete.
    """
    import warnings

    from astropy.io import fits

    size = path.stat().st_size
    if size == 0 or size % FITS_BLOCK:
        raise HeaderError(
            f"{path.name} is truncated or not FITS: {size} bytes is not a whole number "
            f"of {FITS_BLOCK}-byte FITS blocks"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
            declared = hdul[0].header.get("NEXTEND")
            found = len(hdul) - 1
    for w in caught:
        text = str(w.message)
        if "truncated" in text or "corrupted" in text:
            raise HeaderError(f"{path.name} is truncated or corrupt: {text}")
    if isinstance(declared, int) and found < declared:
        raise HeaderError(
            f"{path.name} is truncated: NEXTEND says {declared} extensions, the file has {found}"
        )


def update_primary(paths: Sequence[Path], values: Mapping[str, object]) -> None:
    """Set ``values`` in the primary header of each FITS file (checked whole first)."""
    from astropy.io import fits

    for path in paths:
        try:
            check_complete(path)
            with fits.open(path, mode="update", memmap=False) as hdul:
                header = hdul[0].header
                for key, value in values.items():
                    header[key] = value
        except HeaderError:
            raise
        except Exception as exc:  # astropy raises many kinds for a broken file
            raise HeaderError(f"cannot update the header of {path.name}: {exc}") from exc
        log.debug("%s: set %s", path.name, ", ".join(f"{k}={v}" for k, v in values.items()))

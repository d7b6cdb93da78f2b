"""Header keywords written into the working copies of the raw inputs before calibration."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger("caldp.headers")

VERSION_KEYWORDS = ("CSYS_VER", "AWSDPVER", "AWSYSVER")
MAX_VERSION_LENGTH = 32  # archive catalogue columns are short


class HeaderError(Exception):
    """A FITS input could not be read or updated."""


def version_values(env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    values = {}
    for key in VERSION_KEYWORDS:
        value = (env.get(key) or "UNDEFINED").strip() or "UNDEFINED"
        if len(value) > MAX_VERSION_LENGTH:
            log.warning("%s is longer than %d characters; truncated", key, MAX_VERSION_LENGTH)
            value = value[:MAX_VERSION_LENGTH]
        values[key] = value
    return values


def update_primary(paths: Sequence[Path], values: Mapping[str, object]) -> None:
    """Set ``values`` in the primary header of each FITS file."""
    from astropy.io import fits

    for path in paths:
        try:
            with fits.open(path, mode="update", memmap=False) as hdul:
                header = hdul[0].header
                for key, value in values.items():
                    header[key] = value
        except Exception as exc:  # astropy raises many kinds for a broken file
            raise HeaderError(f"cannot update the header of {path.name}: {exc}") from exc
        log.debug("%s: set %s", path.name, ", ".join(f"{k}={v}" for k, v in values.items()))

"""The numbers caldp takes from the environment: one table, one rule.

Each variable has a default and a range; a value that is not a number of the
right kind, or is out of range, is refused naming the variable.
``caldp-process`` checks them all before any work (:func:`check`, exit 2), and
every part reads its value with :func:`number`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """An environment variable holds a value caldp cannot use."""


@dataclass(frozen=True)
class Number:
    name: str
    default: int | float
    minimum: int | float
    maximum: int | float | None = None

    @property
    def kind(self) -> type:
        return type(self.default)


NUMBERS: dict[str, Number] = {
    n.name: n
    for n in (
        Number("CALDP_S3_RETRIES", 4, 1),
        Number("CALDP_S3_RETRY_SECONDS", 2.0, 0.0),
        Number("CALDP_S3_THREADS", 4, 1),
        Number("CALDP_S3_GZIP_LEVEL", 1, 0, 9),
        Number("AWS_MAX_ATTEMPTS", 3, 1),
        Number("CALDP_ASTROQUERY_RETRIES", 3, 1),
        Number("CALDP_ASTROQUERY_RETRY_SECONDS", 5.0, 0.0),
        Number("CALDP_REFERENCE_RETRIES", 4, 1),
        Number("CALDP_REFERENCE_RETRY_SECONDS", 10.0, 0.0),
        Number("CALDP_MAX_TAR_BYTES", 200 * 2**30, 1),  # bytes of tarball members in all
    )
}


def number(name: str, environ: Mapping[str, str] | None = None) -> int | float:
    """The value of ``name`` (its default when unset or empty); :class:`SettingsError`
    when it is not a number of its kind within its range."""
    spec = NUMBERS[name]
    text = (os.environ if environ is None else environ).get(name, "").strip()
    if not text:
        return spec.default
    what = "a whole number" if spec.kind is int else "a number"
    try:
        value = spec.kind(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r} is not {what}") from None
    if value < spec.minimum or (spec.maximum is not None and value > spec.maximum):
        bounds = (
            f"from {spec.minimum} to {spec.maximum}"
            if spec.maximum is not None
            else (f"at least {spec.minimum}")
        )
        raise SettingsError(f"{name}={text!r} is out of range: {what} {bounds}")
    return value


def check(environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`SettingsError` for the first unusable variable."""
    for name in NUMBERS:
        number(name, environ)

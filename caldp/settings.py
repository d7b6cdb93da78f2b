"""The environment, read once: :class:`Settings`, and the numbers in it by one rule.

``caldp-process`` reads the environment once at its start into a frozen
:class:`Settings` (:meth:`Settings.read`), which is passed down with the run;
the profile's defaults are added to that copy, never to the process's own
environment.  The calibration programs get their environment built from it,
and CRDS, which reads ``os.environ`` itself, sees the profile's values only
while it runs (:meth:`Settings.exported`).

Each number has a default and a range; a value that is not a number of the
right kind, or is out of range, is refused naming the variable.
:meth:`Settings.read` checks them all before any work (exit 2), and every part
reads its value from the run's settings (:meth:`Settings.number`, or
:func:`number` on a mapping given to it): only :meth:`Settings.read` reads
``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

from caldp.retry import RetryPolicy


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


def number(name: str, environ: Mapping[str, str]) -> int | float:
    """The value of ``name`` in ``environ`` (its default when unset or empty);
    :class:`SettingsError` when it is not a number of its kind within its range."""
    spec = NUMBERS[name]
    text = environ.get(name, "").strip()
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


def check(environ: Mapping[str, str]) -> None:
    """Raise :class:`SettingsError` for the first unusable variable."""
    for name in NUMBERS:
        number(name, environ)


@dataclass(frozen=True)
class Settings:
    """The environment caldp-process runs with, checked: read once, never changed.

    ``added`` are the values put in on top of the process's environment (a
    profile's defaults), which only the programs and CRDS are given.
    """

    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    added: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The environment (``os.environ`` when not given), its numbers checked:
        :class:`SettingsError` for the first unusable one."""
        values = dict(os.environ if environ is None else environ)
        check(values)
        return cls(MappingProxyType(values))

    def get(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default)

    def number(self, name: str) -> int | float:
        return number(name, self.environ)

    def retry_policy(self, attempts: str, seconds: str) -> RetryPolicy:
        """The retry policy of ``attempts`` tries, the first wait ``seconds`` (the
        names of two numbers, such as ``CALDP_S3_RETRIES``, ``CALDP_S3_RETRY_SECONDS``)."""
        return RetryPolicy(attempts=int(self.number(attempts)), first_wait=self.number(seconds))

    def adding(self, values: Mapping[str, str]) -> Settings:
        """These settings with ``values`` on top (checked, as :meth:`read` does)."""
        environ = {**self.environ, **values}
        check(environ)
        added = {**self.added, **values}
        return Settings(MappingProxyType(environ), MappingProxyType(added))

    def child_environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a program caldp runs: these settings and ``extra``."""
        return {**self.environ, **(extra or {})}

    @contextmanager
    def exported(self) -> Iterator[None]:
        """The added values in ``os.environ`` for the block, as they were after it.

        For CRDS, which reads its settings (``CRDS_PATH``, ``CRDS_SERVER_URL``,
        ``CRDS_READONLY_CACHE``, ...) from ``os.environ`` itself."""
        saved = {name: os.environ.get(name) for name in self.added}
        os.environ.update(self.added)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

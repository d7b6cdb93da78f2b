"""Where inputs come from and where outputs go.

Inputs: ``file:DIR``, ``s3://bucket/prefix``, ``astroquery:[DIR|s3://...]``.
Outputs: ``file:DIR``, ``s3://bucket/prefix``, ``none``.

Each backend is a plain module, named in :data:`SCHEMES` (one entry per scheme:
how its URIs read, the module that fetches inputs, the class that writes
outputs, the exit code of a failed fetch), imported only when used.  This
package parses URIs and hands the work to the scheme's backend.  An input
backend has::

    fetch(location: str, dataset: Dataset, dest: Path, settings: Settings) -> list[Path]

which returns candidate files (the pipeline then picks the dataset's own files
and copies them into its working directory).  An output backend is a class
made with ``(uri, settings)``, whose objects have ``check()``,
``deliver(plan) -> Delivered`` and a ``messages`` box
(:class:`caldp.storage.messages.MessageBox`).  ``settings`` are the run's
(:class:`caldp.settings.Settings`): a backend reads its numbers and names there,
never in the process environment.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from caldp.datasets import Dataset
from caldp.exit_codes import ExitCode
from caldp.settings import Settings
from caldp.storage.messages import MessageBox


class UriError(ValueError):
    """An input or output URI that caldp cannot use (a command-line error)."""


@dataclass(frozen=True)
class Uri:
    scheme: str  # "file", "s3", "astroquery", "none"
    location: str  # folder, "bucket/prefix", or "" / a poller location for astroquery

    def __str__(self) -> str:
        if self.scheme == "none":
            return "none"
        if self.scheme == "s3":
            return f"s3://{self.location}"
        return f"{self.scheme}:{self.location}"

    @property
    def bucket(self) -> str:
        return self.location.split("/", 1)[0]

    @property
    def prefix(self) -> str:
        parts = self.location.split("/", 1)
        return parts[1].strip("/") if len(parts) > 1 else ""


@dataclass(frozen=True)
class Scheme:
    """One kind of location.  ``inputs``: the module with ``fetch`` (None: not an
    input); ``output``: ``module:Class`` of its :class:`Output` (None: not an output)."""

    name: str
    prefix: str  # how its URIs start ("none" is the whole URI)
    usage: str  # for error messages: "file:DIR"
    location: Callable[[str], str]  # the rest of the URI -> Uri.location (UriError if bad)
    inputs: str | None = None
    output: str | None = None
    fetch_code: ExitCode = ExitCode.GENERIC_ERROR  # the fetch step's exit code

    def match(self, text: str) -> str | None:
        """The location, if ``text`` is a URI of this scheme."""
        if self.name == "none":
            return "" if text.lower() == "none" else None
        return self.location(text[len(self.prefix) :]) if text.startswith(self.prefix) else None


def _folder(rest: str) -> str:
    return rest or "."


def _bucket_prefix(rest: str) -> str:
    location = rest.strip("/")
    if not location or rest.startswith("/"):
        raise UriError(f"S3 URI without a bucket: s3://{rest}")
    return location


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme(
            "file",
            "file:",
            "file:DIR",
            _folder,
            inputs="caldp.storage.file",
            output="caldp.storage.file:FileOutput",
            fetch_code=ExitCode.INPUT_TAR_FILE_ERROR,
        ),
        Scheme(
            "s3",
            "s3://",
            "s3://bucket/prefix",
            _bucket_prefix,
            inputs="caldp.storage.s3",
            output="caldp.storage.s3:S3Output",
            fetch_code=ExitCode.S3_DOWNLOAD_ERROR,
        ),
        Scheme(
            "astroquery",
            "astroquery:",
            "astroquery:",
            str,
            inputs="caldp.storage.astroquery",
            fetch_code=ExitCode.ASTROQUERY_ERROR,
        ),
        Scheme("none", "none", "none", str, output="caldp.storage.file:NoOutput"),
    )
}


def _parse(text: str, role: str) -> Uri:
    usable = [s for s in SCHEMES.values() if getattr(s, role) is not None]
    for scheme in usable:
        location = scheme.match(text)
        if location is not None:
            return Uri(scheme.name, location)
    expected = ", ".join(s.usage for s in usable)
    raise UriError(
        f"unsupported {'input' if role == 'inputs' else 'output'} {text!r}: expected {expected}"
    )


def parse_input_uri(text: str) -> Uri:
    return _parse(text, "inputs")


def parse_output_uri(text: str) -> Uri:
    return _parse(text, "output")


def input_backend(uri: Uri) -> Any:
    """The module that fetches inputs of ``uri``'s scheme."""
    return importlib.import_module(SCHEMES[uri.scheme].inputs or "")


def open_output(uri: Uri, settings: Settings) -> Output:
    """The :class:`Output` that writes to ``uri``, with the run's ``settings``."""
    module, _, name = (SCHEMES[uri.scheme].output or "").partition(":")
    return getattr(importlib.import_module(module), name)(uri, settings)


@dataclass
class DeliveryPlan:
    """What a run delivers.  Paths are in the working directory.

    ``products`` are the data files (calibrated products, inputs, trailers);
    ``previews`` go under ``previews/``; ``logs`` are process.txt, preview.txt and
    the metrics files; ``env_files`` the ``<ds>_cal_env.txt``.  When calibration
    produced nothing, ``inputs_only`` is true and ``products`` are the inputs,
    delivered under a name that cannot be mistaken for products.

    ``write_logs``, when set, writes the logs and returns them: a backend calls
    :meth:`final_logs` once the products are delivered, so that the run's metrics
    cover their delivery.
    """

    dataset: Dataset
    products: list[Path] = field(default_factory=list)
    previews: list[Path] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    env_files: list[Path] = field(default_factory=list)
    inputs_only: bool = False
    write_logs: Callable[[], list[Path]] | None = None

    def final_logs(self) -> list[Path]:
        """The logs to deliver, written now when ``write_logs`` is set."""
        if self.write_logs is not None:
            self.logs = self.write_logs()
            self.write_logs = None
        return self.logs


@dataclass
class Delivered:
    """What was delivered, as the final message lists it (docs/interface.rst): the
    files relative to the output root (``file:``), or the tarball's URL (S3)."""

    message_lines: list[str]


class Output(Protocol):
    uri: Uri
    messages: MessageBox

    def check(self) -> None:
        """Fail early (with exit 25) if the output location is not usable."""

    def deliver(self, plan: DeliveryPlan) -> Delivered: ...

    def deliver_log(self, dataset: Dataset, path: Path, *, again: bool = False) -> str:
        """Deliver one log file (``again``: a newer copy of one delivered); where it went."""

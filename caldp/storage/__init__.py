"""Where inputs come from and where outputs go.

Inputs: ``file:DIR``, ``s3://bucket/prefix``, ``astroquery:[DIR|s3://...]``.
Outputs: ``file:DIR``, ``s3://bucket/prefix``, ``none``.

Each backend is a plain module; this package only parses URIs and hands the
work to the module for the scheme.  An input backend has::

    fetch(location: str, dataset: Dataset, dest: Path) -> list[Path]

which returns candidate files (the pipeline then picks the dataset's own files
and copies them into its working directory).  An output backend is an object
with ``check()``, ``deliver(plan) -> Delivered`` and a ``messages`` box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from caldp.datasets import Dataset


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


def parse_input_uri(text: str) -> Uri:
    if text.startswith("s3://"):
        return _s3(text)
    if text.startswith("file:"):
        return Uri("file", text[len("file:") :] or ".")
    if text.startswith("astroquery:"):
        return Uri("astroquery", text[len("astroquery:") :])
    raise UriError(
        f"unsupported input {text!r}: expected file:DIR, s3://bucket/prefix or astroquery:"
    )


def parse_output_uri(text: str) -> Uri:
    if text.lower() == "none":
        return Uri("none", "")
    if text.startswith("s3://"):
        return _s3(text)
    if text.startswith("file:"):
        return Uri("file", text[len("file:") :] or ".")
    raise UriError(f"unsupported output {text!r}: expected file:DIR, s3://bucket/prefix or none")


def _s3(text: str) -> Uri:
    location = text[len("s3://") :].strip("/")
    if not location or location.startswith("/"):
        raise UriError(f"S3 URI without a bucket: {text!r}")
    return Uri("s3", location)


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
    """What was delivered: ``files`` relative to the output root (file: mode) or
    object URLs (S3 mode); ``message_lines`` is the body of the final message."""

    files: list[str]
    message_lines: list[str]


def replaced_by_processing(dataset: str) -> tuple[str, ...]:
    """The state messages that ``processing-<ds>`` replaces: the orchestrator's
    ``submit-<ds>`` and an earlier run's final message (a dataset has one state
    message at a time; ``placed-`` and the other orchestrator states are left alone)."""
    return (f"submit-{dataset}", f"error-{dataset}", f"processed-{dataset}.trigger")


class MessageBox(Protocol):
    """State messages (docs/interface.rst, State messages)."""

    def start(self, dataset: str) -> None:
        """Write ``processing-<ds>``, then remove the messages it replaces
        (:func:`replaced_by_processing`)."""

    def finish(self, dataset: str, ok: bool, lines: list[str]) -> str:
        """Write ``processed-<ds>.trigger`` or ``error-<ds>``, remove ``processing-<ds>``."""


class Output(Protocol):
    uri: Uri
    messages: MessageBox

    def check(self) -> None:
        """Fail early (with exit 25) if the output location is not usable."""

    def deliver(self, plan: DeliveryPlan) -> Delivered: ...

    def deliver_log(self, dataset: Dataset, path: Path, *, again: bool = False) -> str:
        """Deliver one log file (``again``: a newer copy of one delivered); where it went."""

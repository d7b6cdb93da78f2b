"""S3 inputs, outputs and messages.

Endpoint, region and credentials come the standard AWS way (boto3's default
credential chain, ``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``), so
the same code talks to AWS, to a local moto server or to any S3-compatible store.

Inputs: ``s3://bucket/prefix`` names the object ``prefix/<ds>.tar.gz``, which is
streamed straight into the safe tarball extraction (no local copy).

Outputs: ``s3://bucket/prefix`` receives ``prefix/<ds>.tar.gz`` (members
``<ds>/<file>``, ``<ds>/env/<file>``, ``<ds>/previews/<file>``), then the logs and
metrics files beside it; the state files go to ``s3://bucket/messages/``.  The
tarball is never written to local disk: tar and gzip run as a stream, the gzip
compression in parallel blocks (one valid gzip member, as pigz makes), and the
compressed stream is cut into multipart-upload parts uploaded in parallel.
Every object is checked after upload (size, and SHA-256 checksum or MD5 ETag).

The numbers come from the run's settings (:class:`caldp.settings.Settings`),
given to :func:`fetch`, :class:`S3Output` and :class:`S3MessageBox`.  Retries:
``CALDP_S3_RETRIES`` attempts (default 4), waiting ``CALDP_S3_RETRY_SECONDS``
(default 2) doubled after each failure, capped at 60 s.  Definite refusals
(missing object or bucket, access denied) are not retried.  Tuning:
``CALDP_S3_GZIP_LEVEL`` (default 1), ``CALDP_S3_THREADS`` (parallel uploads,
default 4).

The plumbing (clients, error classification, retries, keys) is in
:mod:`caldp.storage.s3_client`; the streaming tar.gz upload and the object
checks in :mod:`caldp.storage.s3_upload`.
"""

from __future__ import annotations

import io
import logging
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caldp import locks
from caldp.datasets import Dataset
from caldp.errors import DownloadError, OutputError, is_memory_error
from caldp.log import PROCESS_LOG
from caldp.retry import GaveUp, RetryPolicy, retry
from caldp.settings import Settings
from caldp.storage import Delivered, DeliveryPlan, Uri
from caldp.storage import tarball as tarball_mod
from caldp.storage.messages import MessageBox, processing_name
from caldp.storage.s3_client import (
    boto_errors,
    call_with_retries,
    describe_error,
    error_code,
    is_final,
    join_key,
    make_client,
    retry_policy,
    s3_url,
    split_location,
)
from caldp.storage.s3_upload import TarMember, precondition_failed, put_bytes, upload_tarball

log = logging.getLogger("caldp.s3")

MESSAGES_PREFIX = "messages"
EARLIER_LOG_SUFFIXES = (".txt", ".json")  # process.txt, *_metrics.txt, metrics.json ...


# ----------------------------------------------------------------------------- inputs


class StreamBroken(Exception):
    """The download stream failed (a network problem, not a tarball problem)."""


class _GuardedStream(io.RawIOBase):
    """A read-only view of a download body that reports any failure as StreamBroken.

    The tarball extraction turns OSError into "corrupt tarball" (exit 21); a
    dropped connection must instead be a download error (26) and be retried.
    """

    def __init__(self, body: Any, source: str):
        self._body = body
        self._source = source
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._body.read(None if size is None or size < 0 else size)
        except Exception as exc:  # noqa: BLE001 - any failure of the stream is a download error
            if is_memory_error(exc):
                raise  # memory errors keep their own exit codes
            raise StreamBroken(
                f"{self._source}: download interrupted after {self.bytes_read} bytes: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._body.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail too
            pass
        super().close()


def _tree(dest: Path) -> set[Path]:
    return set(dest.rglob("*")) if dest.exists() else set()


def _remove_new(dest: Path, before: set[Path]) -> None:
    """Remove what appeared under ``dest`` since ``before`` (a failed partial extraction)."""
    for path in sorted(_tree(dest) - before, key=lambda p: len(p.parts), reverse=True):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()
        except OSError as exc:
            log.warning("could not remove partial download %s: %s", path, exc)


def fetch(location: str, dataset: Dataset, dest: Path, settings: Settings) -> list[Path]:
    """Stream ``s3://<location>/<ds>.tar.gz`` into ``dest`` and return the files extracted.

    Download problems give exit 26 (after bounded retries, each retry starting
    from a clean ``dest``); tarball problems give :class:`TarballError` (21).
    """
    bucket, prefix = split_location(location)
    key = join_key(prefix, f"{dataset.name}.tar.gz")
    url = s3_url(bucket, key)
    policy = retry_policy(settings)
    client = make_client(settings)
    limit = tarball_mod.byte_limit(settings)
    dest.mkdir(parents=True, exist_ok=True)

    def attempt() -> list[Path]:
        before = _tree(dest)
        started = time.monotonic()
        try:
            response = client.get_object(Bucket=bucket, Key=key)
            stream = _GuardedStream(response["Body"], url)
            with stream:
                files = tarball_mod.extract_stream(stream, dest, max_total_bytes=limit, source=url)
        except BaseException:
            _remove_new(dest, before)  # each try starts clean; nothing half-written stays
            raise
        seconds = max(time.monotonic() - started, 1e-6)
        log.info(
            "fetched %s: %d files, %.1f MB in %.1f s",
            url,
            len(files),
            stream.bytes_read / 1e6,
            seconds,
        )
        return files

    try:
        return retry(
            f"download of {url}",
            attempt,
            policy,
            boto_errors() + (StreamBroken,),
            is_final=is_final,
            describe=describe_error,
            log=log,
        )
    except GaveUp as exc:
        raise DownloadError(
            f"cannot download {url} (attempt {exc.attempts} of {policy.attempts}): "
            f"{describe_error(exc.last)}",
        ) from exc.last


# ----------------------------------------------------------------------------- outputs


class S3MessageBox(MessageBox):
    """State files under ``s3://<bucket>/messages/``, each one PUT (whole or not at all).

    The dataset's lock is ``processing-<ds>`` itself, created only if there is none
    (S3 has no lock of its own); a message holds the lines it lists only."""

    processing_is_the_lock = True

    def __init__(
        self, bucket: str, settings: Settings, prefix: str = MESSAGES_PREFIX, client: Any = None
    ):
        super().__init__()
        self.bucket = bucket
        self.settings = settings
        self.policy = retry_policy(settings)
        self.prefix = prefix.strip("/")
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.settings)
        return self._client

    def url(self, name: str) -> str:
        return s3_url(self.bucket, join_key(self.prefix, name))

    def where(self, name: str) -> str:
        return self.url(name)

    def _write(self, name: str, text: str) -> None:
        put_bytes(
            self.client,
            self.bucket,
            join_key(self.prefix, name),
            text.encode("utf-8"),
            policy=self.policy,
            content_type="text/plain",
        )

    def _remove(self, name: str) -> None:
        key = join_key(self.prefix, name)
        call_with_retries(
            f"removing {s3_url(self.bucket, key)}",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=key),
            error=OutputError,
            policy=self.policy,
        )

    def _acquire(self, dataset: str) -> None:
        """Create ``processing-<ds>``, only if there is none: it is the dataset's lock on
        this output, taken before anything is written under the output prefix.

        An existing ``processing-<ds>`` means another run of the dataset is in progress:
        :class:`caldp.locks.Busy` -- unless it was written by this same AWS Batch job
        (``AWS_BATCH_JOB_ID``: an earlier attempt of the job that died), or by this run
        (a retried PUT whose first attempt went through).  It names its writer.
        """
        name = processing_name(dataset)
        key = join_key(self.prefix, name)
        job = self.settings.get("AWS_BATCH_JOB_ID").strip()
        body = locks.s3_lock_text(uuid.uuid4().hex, job)
        try:
            put_bytes(
                self.client,
                self.bucket,
                key,
                body.encode(),
                policy=self.policy,
                content_type="text/plain",
                only_new=True,
            )
        except OutputError as exc:
            if not precondition_failed(exc):
                raise
            existing = read_object_text(self.client, self.bucket, key, self.policy)
            same_job = bool(job) and locks.batch_job_of(existing) == job
            if existing != body and not same_job:
                raise locks.Busy(
                    f"{self.url(name)} exists: another run of {dataset} is in progress "
                    f"({existing.strip() or 'writer unknown'}); this run is refused and "
                    "changes nothing (if no other run is in progress, remove that message "
                    "and run again)"
                ) from exc
            if same_job:
                log.info("%s was written by an earlier attempt of this job", self.url(name))
                self._write(name, body)
        log.info("message %s", self.url(name))


@dataclass
class S3Output:
    """Delivery to ``s3://bucket/prefix`` (CALCLOUD passes ``s3://<bucket>/outputs/<ds>``)."""

    uri: Uri
    settings: Settings = field(repr=False)
    messages: S3MessageBox = field(init=False)
    policy: RetryPolicy = field(init=False)
    _client: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.uri.scheme != "s3":
            raise ValueError(f"S3Output needs an s3:// URI, not {self.uri}")
        self.messages = S3MessageBox(self.bucket, self.settings)
        self.policy = retry_policy(self.settings)

    @property
    def bucket(self) -> str:
        return self.uri.bucket

    @property
    def prefix(self) -> str:
        return self.uri.prefix

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.settings, max_connections=max(10, self.threads + 4))
            self.messages._client = self._client
        return self._client

    @property
    def threads(self) -> int:
        """The tarball's parts uploaded in parallel (``CALDP_S3_THREADS``)."""
        return int(self.settings.number("CALDP_S3_THREADS"))

    def check(self) -> None:
        """Fail early with exit 25 unless the output prefix is writable.

        The write check is the run's log to be: ``<prefix>/process.txt`` saying
        that the run started, which the delivery replaces with the whole log.
        One PUT: nothing deleted, the bucket neither listed nor HEADed.
        """
        key = join_key(self.prefix, PROCESS_LOG)
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = f"caldp started at {started}; the delivery replaces this with the run's log\n"
        try:
            put_bytes(
                self.client,
                self.bucket,
                key,
                text.encode(),
                policy=self.policy,
                content_type="text/plain",
                verify=False,
            )
        except OutputError as exc:
            raise OutputError(
                f"output s3://{self.bucket}/{self.prefix} is not writable: {exc}"
            ) from exc
        log.info("output s3://%s/%s is writable", self.bucket, self.prefix)

    def tarball_name(self, plan: DeliveryPlan) -> str:
        ds = plan.dataset.name
        return f"{ds}_inputs.tar.gz" if plan.inputs_only else f"{ds}.tar.gz"

    def deliver(self, plan: DeliveryPlan) -> Delivered:
        """Upload the tarball, then the logs; the caller writes the messages afterwards."""
        members = tar_members(plan)
        lines: list[str] = []
        written: set[str] = set()
        client = self.client
        if members:
            key = join_key(self.prefix, self.tarball_name(plan))
            try:
                result = upload_tarball(
                    client,
                    self.bucket,
                    key,
                    members,
                    level=int(self.settings.number("CALDP_S3_GZIP_LEVEL")),
                    threads=self.threads,
                    policy=self.policy,
                )
            except OSError as exc:
                raise OutputError(f"cannot read a file to deliver: {exc}") from exc
            url = s3_url(self.bucket, key)
            log.info(
                "delivered %s: %d files, %.1f MB in %d part(s), %.1f s",
                url,
                len(members),
                result.size / 1e6,
                result.parts,
                result.seconds,
            )
            lines.append(url)
            written.add(key)
        earlier = self.earlier_results(plan.dataset)  # listed before the logs' metrics are taken
        logs = list(_unique(plan.final_logs()))
        if logs:  # small objects: side by side, so the metrics just written stay true
            with ThreadPoolExecutor(min(len(logs), 8), thread_name_prefix="caldp-logs") as pool:
                urls = list(pool.map(lambda path: self.deliver_log(plan.dataset, path), logs))
            written.update(
                join_key(self.prefix, p.name) for p, url in zip(logs, urls, strict=True) if url
            )
        if not lines:
            lines.append(s3_url(self.bucket, self.prefix + "/" if self.prefix else ""))
        self.remove_earlier_results(earlier, written)
        return Delivered(message_lines=lines)

    def earlier_result(self, dataset: Dataset, name: str) -> bool:
        """Whether an object directly under the prefix named ``name`` is one a caldp run of
        ``dataset`` delivers: its tarballs, and its logs and metrics (``.txt``, ``.json``)."""
        ds = dataset.name
        return name in (f"{ds}.tar.gz", f"{ds}_inputs.tar.gz") or (
            "/" not in name and name.endswith(EARLIER_LOG_SUFFIXES)
        )

    def earlier_results(self, dataset: Dataset) -> list[str] | None:
        """The keys directly under the prefix that a caldp run of ``dataset`` delivers
        (None when they cannot be listed: the job role needs ``s3:ListBucket``)."""
        client = self.client
        base = join_key(self.prefix, "")
        try:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base, Delimiter="/"
            )
            listed = [item["Key"] for page in pages for item in page.get("Contents", [])]
        except boto_errors() as exc:
            log.warning(
                "cannot list s3://%s/%s to remove an earlier run's results (the job role "
                "needs s3:ListBucket for this prefix): %s",
                self.bucket,
                base,
                describe_error(exc),
            )
            return None
        return [key for key in listed if self.earlier_result(dataset, key[len(base) :])]

    def remove_earlier_results(self, earlier: list[str] | None, written: set[str]) -> None:
        """Delete what an earlier run of the dataset delivered under the prefix and this run
        did not replace (the products beside a later failure's inputs tarball, the preview
        logs of a run that got to previews), so that the prefix holds one run's results.

        ``earlier`` is from :meth:`earlier_results`; without the listing permission the
        earlier results stay, with a warning.  Deleting needs ``s3:DeleteObject`` when
        there is something to remove; an object that cannot be deleted is a delivery
        failure (25)."""
        client = self.client
        for key in earlier or []:
            if key in written:
                continue
            call_with_retries(
                f"removing {s3_url(self.bucket, key)}, left by an earlier run",
                lambda key=key: client.delete_object(Bucket=self.bucket, Key=key),
                error=OutputError,
                policy=self.policy,
            )
            log.info("removed %s, left by an earlier run", s3_url(self.bucket, key))

    def deliver_log(self, dataset: Dataset, path: Path, *, again: bool = False) -> str:  # noqa: ARG002
        """Upload one log beside the tarball; its URL, or "" when the file cannot be read
        (a missing log must not cost the delivery).  ``again``: a newer copy of a log
        already delivered and checked, sent without the HEAD that checks it (S3 checks
        the PUT's Content-MD5 itself)."""
        key = join_key(self.prefix, path.name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("log %s not delivered: %s", path, exc)
            return ""
        put_bytes(
            self.client,
            self.bucket,
            key,
            data,
            policy=self.policy,
            content_type="text/plain",
            verify=not again,
        )
        return s3_url(self.bucket, key)


def _unique(paths: list[Path]) -> Iterator[Path]:
    seen: set[str] = set()
    for path in paths:
        if path.name in seen:
            log.warning("not delivering %s twice", path.name)
            continue
        seen.add(path.name)
        yield path


def tar_members(plan: DeliveryPlan) -> list[TarMember]:
    """Members of the delivery tarball: ``<ds>/<file>``, ``<ds>/env/<file>``, ``<ds>/previews/<file>``."""
    ds = plan.dataset.name
    members: list[TarMember] = []
    seen: set[str] = set()
    groups = ((plan.products, ""), (plan.env_files, "env/"), (plan.previews, "previews/"))
    for paths, sub in groups:
        for path in paths:
            arcname = f"{ds}/{sub}{path.name}"
            if arcname in seen:
                log.warning("not delivering %s twice", arcname)
                continue
            if not path.is_file():
                raise OutputError(f"file to deliver is missing: {path}")
            seen.add(arcname)
            members.append(TarMember(path, arcname))
    return members


def read_object_text(client: Any, bucket: str, key: str, policy: RetryPolicy) -> str:
    """A small object's text ("" if it went away meanwhile)."""

    def get() -> str:
        try:
            data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except boto_errors() as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return ""
            raise
        return data.decode("utf-8", errors="replace")

    return call_with_retries(
        f"reading {s3_url(bucket, key)}", get, error=OutputError, policy=policy
    )


def read_object_lines(bucket: str, key: str, settings: Settings) -> list[str]:
    """The text lines of a small object (for poller files)."""
    client = make_client(settings)

    def get() -> bytes:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    data = call_with_retries(
        f"reading {s3_url(bucket, key)}", get, error=DownloadError, policy=retry_policy(settings)
    )
    return data.decode("utf-8", errors="replace").splitlines()

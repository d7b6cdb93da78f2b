"""S3 inputs, outputs and messages (CONTRACT sections 3-5).

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

Retries: ``CALDP_S3_RETRIES`` attempts (default 4), waiting
``CALDP_S3_RETRY_SECONDS`` (default 2) doubled after each failure, capped at 60 s.
Definite refusals (missing object or bucket, access denied) are not retried.
Tuning: ``CALDP_S3_GZIP_LEVEL`` (default 1), ``CALDP_S3_THREADS`` (parallel
uploads, default 4).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import shutil
import struct
import tarfile
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from caldp.datasets import Dataset
from caldp.exit_codes import ExitCode
from caldp.storage import Delivered, DeliveryPlan, Uri
from caldp.storage import tarball as tarball_mod
from caldp.sysexit import CaldpError, is_os_memory_error

log = logging.getLogger("caldp.s3")

T = TypeVar("T")

MiB = 2**20
MIN_PART_BYTES = 8 * MiB  # S3 needs >= 5 MiB for every part but the last
MAX_PARTS = 9000  # S3 allows 10000; keep a margin for the compression overhead
GZIP_BLOCK_BYTES = 2 * MiB  # uncompressed bytes compressed per parallel job
DEFLATE_WINDOW = 32 * 1024
MESSAGES_PREFIX = "messages"
# Client errors that retrying cannot fix.
FINAL_ERROR_CODES = frozenset(
    {
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchUpload",
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidBucketName",
        "AccountProblem",
        "403",
        "404",
    }
)


# ----------------------------------------------------------------------------- plumbing


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff."""

    attempts: int = 4
    first_wait: float = 2.0
    max_wait: float = 60.0

    def wait(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure (1-based)."""
        return min(self.max_wait, self.first_wait * 2 ** (failures - 1))

    @classmethod
    def from_env(
        cls, attempts_var: str, seconds_var: str, attempts: int, seconds: float
    ) -> RetryPolicy:
        return cls(
            attempts=max(1, _env_int(attempts_var, attempts)),
            first_wait=max(0.0, _env_float(seconds_var, seconds)),
        )


def retry_policy() -> RetryPolicy:
    """The S3 retry policy from ``CALDP_S3_RETRIES`` and ``CALDP_S3_RETRY_SECONDS``."""
    return RetryPolicy.from_env("CALDP_S3_RETRIES", "CALDP_S3_RETRY_SECONDS", 4, 2.0)


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        log.warning("ignoring %s=%r: not an integer", name, os.environ.get(name))
        return default


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        log.warning("ignoring %s=%r: not a number", name, os.environ.get(name))
        return default


def make_client(max_connections: int = 10) -> Any:
    """A boto3 S3 client configured from the environment the standard AWS way."""
    import boto3
    from botocore.config import Config

    # botocore's own retries (per request); AWS_MAX_ATTEMPTS / AWS_RETRY_MODE override.
    config = Config(
        retries={
            "total_max_attempts": max(1, _env_int("AWS_MAX_ATTEMPTS", 3)),
            "mode": os.environ.get("AWS_RETRY_MODE") or "standard",
        },
        max_pool_connections=max_connections,
        connect_timeout=20,
        read_timeout=120,
    )
    return boto3.session.Session().client("s3", config=config)


def boto_errors() -> tuple[type[BaseException], ...]:
    """Exceptions of botocore that mean "the S3 call failed"."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError ('' for other errors)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_final(exc: BaseException) -> bool:
    """True for errors that retrying cannot fix (missing, denied, malformed)."""
    code = error_code(exc)
    if code in FINAL_ERROR_CODES:
        return True
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def describe_error(exc: BaseException) -> str:
    code = error_code(exc)
    text = str(exc) or type(exc).__name__
    return f"{code}: {text}" if code and code not in text else text


def split_location(location: str) -> tuple[str, str]:
    """``bucket/prefix`` or ``s3://bucket/prefix`` -> (bucket, prefix without slashes)."""
    text = location[len("s3://") :] if location.startswith("s3://") else location
    text = text.strip("/")
    bucket, _, prefix = text.partition("/")
    if not bucket:
        raise ValueError(f"S3 location without a bucket: {location!r}")
    return bucket, prefix.strip("/")


def join_key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def s3_url(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def call_with_retries(
    what: str,
    func: Callable[[], T],
    *,
    exit_code: int,
    policy: RetryPolicy | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Run ``func`` with bounded retries; raise ``CaldpError(exit_code)`` when it keeps failing.

    Botocore errors (and ``retry_on``) are retried unless :func:`is_final`; other
    exceptions (MemoryError, bugs) propagate unchanged.
    """
    policy = policy or retry_policy()
    errors = boto_errors() + retry_on
    for attempt in range(1, policy.attempts + 1):
        try:
            return func()
        except errors as exc:
            final = is_final(exc) or attempt == policy.attempts
            if final:
                raise CaldpError(
                    exit_code, f"{what} failed after {attempt} attempt(s): {describe_error(exc)}"
                ) from exc
            wait = policy.wait(attempt)
            log.warning(
                "%s failed (attempt %d of %d): %s; retrying in %.1f s",
                what,
                attempt,
                policy.attempts,
                describe_error(exc),
                wait,
            )
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


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
            if isinstance(exc, MemoryError) or is_os_memory_error(exc):
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


def fetch(location: str, dataset: Dataset, dest: Path) -> list[Path]:
    """Stream ``s3://<location>/<ds>.tar.gz`` into ``dest`` and return the files extracted.

    Download problems give exit 26 (after bounded retries, each retry starting
    from a clean ``dest``); tarball problems give :class:`TarballError` (21).
    """
    bucket, prefix = split_location(location)
    key = join_key(prefix, f"{dataset.name}.tar.gz")
    url = s3_url(bucket, key)
    policy = retry_policy()
    errors = boto_errors() + (StreamBroken,)
    client = make_client()
    dest.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, policy.attempts + 1):
        before = _tree(dest)
        started = time.monotonic()
        try:
            response = client.get_object(Bucket=bucket, Key=key)
            stream = _GuardedStream(response["Body"], url)
            with stream:
                files = tarball_mod.extract_stream(stream, dest, source=url)
            seconds = max(time.monotonic() - started, 1e-6)
            log.info(
                "fetched %s: %d files, %.1f MB in %.1f s",
                url,
                len(files),
                stream.bytes_read / 1e6,
                seconds,
            )
            return files
        except errors as exc:
            _remove_new(dest, before)
            if is_final(exc) or attempt == policy.attempts:
                raise CaldpError(
                    ExitCode.S3_DOWNLOAD_ERROR,
                    f"cannot download {url} (attempt {attempt} of {policy.attempts}): "
                    f"{describe_error(exc)}",
                ) from exc
            wait = policy.wait(attempt)
            log.warning(
                "download of %s failed (attempt %d of %d): %s; retrying in %.1f s",
                url,
                attempt,
                policy.attempts,
                describe_error(exc),
                wait,
            )
            time.sleep(wait)
        except BaseException:
            _remove_new(dest, before)  # e.g. a corrupt tarball: leave nothing half-written
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def check_input(location: str) -> None:
    """Fail early with exit 26 if the input bucket cannot be reached."""
    bucket, _prefix = split_location(location)
    client = make_client()
    call_with_retries(
        f"reaching input bucket s3://{bucket}",
        lambda: client.head_bucket(Bucket=bucket),
        exit_code=ExitCode.S3_DOWNLOAD_ERROR,
    )


# ----------------------------------------------------------------------------- uploads


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


@dataclass
class _Part:
    number: int
    size: int
    etag: str
    md5: bytes
    sha256: bytes


@dataclass
class UploadResult:
    key: str
    size: int
    parts: int
    seconds: float = 0.0


class VerifyError(Exception):
    """An uploaded object does not match what was sent."""


def verify_object(
    client: Any,
    bucket: str,
    key: str,
    size: int,
    sha256: str | None,
    md5_etag: str | None,
) -> None:
    """Compare the stored object's size and checksum (or MD5 ETag) with what was sent.

    ``sha256`` is the base64 SHA-256 (for multipart uploads, of the parts'
    digests, as S3 computes its composite checksum); ``md5_etag`` the ETag S3
    gives an unencrypted object (hex MD5, or MD5 of the part MD5s + ``-N``).
    """
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    stored_size = int(head.get("ContentLength", -1))
    if stored_size != size:
        raise VerifyError(f"{s3_url(bucket, key)}: stored size {stored_size} != {size} sent")
    stored_sha = head.get("ChecksumSHA256")
    if stored_sha and sha256:
        if stored_sha.split("-")[0] != sha256:
            raise VerifyError(f"{s3_url(bucket, key)}: stored SHA-256 differs from the one sent")
        return
    etag = str(head.get("ETag", "")).strip('"')
    # An MD5-shaped ETag is comparable; SSE-KMS objects have other ETags (size only then).
    if md5_etag and _looks_like_md5_etag(etag) and etag != md5_etag:
        raise VerifyError(f"{s3_url(bucket, key)}: stored ETag {etag} != {md5_etag} sent")


def _looks_like_md5_etag(etag: str) -> bool:
    hexpart, _, count = etag.partition("-")
    return (
        len(hexpart) == 32
        and all(c in "0123456789abcdef" for c in hexpart)
        and (not count or count.isdigit())
    )


def put_bytes(
    client: Any,
    bucket: str,
    key: str,
    data: bytes,
    *,
    policy: RetryPolicy | None = None,
    content_type: str = "binary/octet-stream",
    verify: bool = True,
) -> None:
    """PUT a small object with MD5/SHA-256 checks, retried; raise CaldpError(25) if it fails."""
    md5 = hashlib.md5(data, usedforsecurity=False).digest()
    sha = hashlib.sha256(data).digest()

    def put() -> None:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentMD5=_b64(md5),
            ChecksumSHA256=_b64(sha),
            ContentType=content_type,
        )
        if verify:
            verify_object(client, bucket, key, len(data), _b64(sha), md5.hex())

    call_with_retries(
        f"uploading {s3_url(bucket, key)}",
        put,
        exit_code=ExitCode.S3_UPLOAD_ERROR,
        policy=policy,
        retry_on=(VerifyError,),
    )


class MultipartSink:
    """Receives a byte stream in order and uploads it as one S3 object.

    The stream is cut into parts of ``part_size`` uploaded by a thread pool
    (at most ``threads + 1`` parts in memory); a stream shorter than one part
    becomes a single PUT.  ``close()`` completes and verifies the upload.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        part_size: int = MIN_PART_BYTES,
        threads: int = 4,
        policy: RetryPolicy | None = None,
        content_type: str = "application/gzip",
    ):
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_size = max(part_size, 5 * MiB)
        self.threads = max(1, threads)
        self.policy = policy or retry_policy()
        self.content_type = content_type
        self.url = s3_url(bucket, key)
        self.size = 0
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._next = 1
        self._pending: deque[Future[_Part]] = deque()
        self._parts: list[_Part] = []
        self._pool: ThreadPoolExecutor | None = None

    def write(self, data: bytes) -> None:
        self._buf += data
        self.size += len(data)
        while len(self._buf) >= self.part_size:
            chunk = bytes(self._buf[: self.part_size])
            del self._buf[: self.part_size]
            self._submit(chunk)

    def _submit(self, chunk: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = call_with_retries(
                f"starting multipart upload of {self.url}",
                lambda: self.client.create_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    ChecksumAlgorithm="SHA256",
                    ContentType=self.content_type,
                )["UploadId"],
                exit_code=ExitCode.S3_UPLOAD_ERROR,
                policy=self.policy,
            )
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="caldp-s3-part")
        assert self._pool is not None
        number = self._next
        self._next += 1
        self._pending.append(self._pool.submit(self._upload_part, number, chunk))
        while len(self._pending) > self.threads:
            self._parts.append(self._pending.popleft().result())

    def _upload_part(self, number: int, chunk: bytes) -> _Part:
        md5 = hashlib.md5(chunk, usedforsecurity=False).digest()
        sha = hashlib.sha256(chunk).digest()

        def put() -> str:
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=chunk,
                ContentMD5=_b64(md5),
                ChecksumSHA256=_b64(sha),
            )
            return str(response["ETag"])

        etag = call_with_retries(
            f"uploading part {number} of {self.url}",
            put,
            exit_code=ExitCode.S3_UPLOAD_ERROR,
            policy=self.policy,
        )
        return _Part(number, len(chunk), etag, md5, sha)

    def close(self) -> UploadResult:
        """Upload what is left, complete the upload and verify the stored object."""
        if self._upload_id is None:
            data = bytes(self._buf)
            self._buf = bytearray()
            put_bytes(
                self.client,
                self.bucket,
                self.key,
                data,
                policy=self.policy,
                content_type=self.content_type,
            )
            return UploadResult(self.key, len(data), 1)
        if self._buf:
            chunk = bytes(self._buf)
            self._buf = bytearray()
            self._submit(chunk)
        while self._pending:
            self._parts.append(self._pending.popleft().result())
        self._shutdown()
        parts = sorted(self._parts, key=lambda p: p.number)
        listing = [
            {"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": _b64(p.sha256)}
            for p in parts
        ]
        upload_id = self._upload_id
        call_with_retries(
            f"completing multipart upload of {self.url}",
            lambda: self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listing},
            ),
            exit_code=ExitCode.S3_UPLOAD_ERROR,
            policy=self.policy,
        )
        self._upload_id = None
        composite_sha = _b64(hashlib.sha256(b"".join(p.sha256 for p in parts)).digest())
        composite_md5 = hashlib.md5(
            b"".join(p.md5 for p in parts), usedforsecurity=False
        ).hexdigest()
        call_with_retries(
            f"verifying {self.url}",
            lambda: verify_object(
                self.client,
                self.bucket,
                self.key,
                self.size,
                composite_sha,
                f"{composite_md5}-{len(parts)}",
            ),
            exit_code=ExitCode.S3_UPLOAD_ERROR,
            policy=RetryPolicy(attempts=1),
        )
        return UploadResult(self.key, self.size, len(parts))

    def abort(self) -> None:
        """Give up: stop the workers and abort the multipart upload (best effort)."""
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._shutdown()
        if self._upload_id is not None:
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
                )
            except boto_errors() as exc:
                log.warning("could not abort the multipart upload of %s: %s", self.url, exc)
            self._upload_id = None

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _deflate_block(block: bytes, zdict: bytes, level: int, last: bool) -> bytes:
    """Raw-deflate one block, primed with the previous 32 KiB, ending on a byte boundary."""
    if zdict:
        comp = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9, 0, zdict)
    else:
        comp = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9, 0)
    return comp.compress(block) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzipWriter(io.RawIOBase):
    """A write-only file that gzips what it receives using several threads.

    The output is one ordinary gzip member: the input is cut into blocks, each
    compressed as raw deflate (primed with the previous block's last 32 KiB)
    and ended with a sync flush, so that the concatenation is one deflate
    stream; the CRC-32 and size trailer cover the whole input.  zlib releases
    the GIL, so blocks compress in parallel.  Output goes to ``sink.write`` in
    order.
    """

    def __init__(
        self,
        sink: Any,
        *,
        level: int = 1,
        threads: int | None = None,
        block_size: int = GZIP_BLOCK_BYTES,
    ):
        super().__init__()
        self._sink = sink
        self._level = level
        self._threads = max(1, threads or os.cpu_count() or 1)
        self._block_size = block_size
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="caldp-gzip")
        self._pending: deque[Future[bytes]] = deque()
        self._buf = bytearray()
        self._tail = b""
        self._crc = 0
        self.size_in = 0
        header = b"\x1f\x8b\x08\x00" + struct.pack("<I", int(time.time())) + b"\x00\x03"
        self._sink.write(header)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self._crc = zlib.crc32(data, self._crc)
        self.size_in += len(data)
        self._buf += data
        while len(self._buf) >= self._block_size:
            block = bytes(self._buf[: self._block_size])
            del self._buf[: self._block_size]
            self._submit(block, last=False)
        return len(data)

    def _submit(self, block: bytes, last: bool) -> None:
        zdict = self._tail
        self._tail = (
            block[-DEFLATE_WINDOW:]
            if len(block) >= DEFLATE_WINDOW
            else (self._tail + block)[-DEFLATE_WINDOW:]
        )
        self._pending.append(self._pool.submit(_deflate_block, block, zdict, self._level, last))
        while len(self._pending) > 2 * self._threads:
            self._sink.write(self._pending.popleft().result())

    def finish(self) -> None:
        """Compress the rest, write the gzip trailer, stop the threads."""
        if self.closed:
            return
        self._submit(bytes(self._buf), last=True)
        self._buf = bytearray()
        while self._pending:
            self._sink.write(self._pending.popleft().result())
        self._sink.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self.size_in & 0xFFFFFFFF))
        self._pool.shutdown(wait=True)
        super().close()

    def abandon(self) -> None:
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()

    def close(self) -> None:  # tarfile closes its file object only if it opened it
        self.finish()


@dataclass
class TarMember:
    path: Path
    arcname: str


def _add_file(tar: tarfile.TarFile, member: TarMember) -> int:
    """Add one regular file (links followed, ownership neutral); return its size."""
    with open(member.path, "rb") as handle:
        st = os.fstat(handle.fileno())
        info = tarfile.TarInfo(member.arcname)
        info.size = st.st_size
        info.mtime = int(st.st_mtime)
        info.mode = 0o644
        info.type = tarfile.REGTYPE
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, handle)
    return info.size


def upload_tarball(
    client: Any,
    bucket: str,
    key: str,
    members: list[TarMember],
    *,
    level: int | None = None,
    threads: int | None = None,
    policy: RetryPolicy | None = None,
) -> UploadResult:
    """Stream ``members`` as a tar.gz into ``s3://bucket/key``; nothing is written locally."""
    started = time.monotonic()
    level = level if level is not None else min(9, max(0, _env_int("CALDP_S3_GZIP_LEVEL", 1)))
    upload_threads = threads or max(1, _env_int("CALDP_S3_THREADS", 4))
    estimate = sum(m.path.stat().st_size + 1024 for m in members) + 10240
    part_size = max(MIN_PART_BYTES, -(-estimate // MAX_PARTS // MiB) * MiB)
    sink = MultipartSink(
        client, bucket, key, part_size=part_size, threads=upload_threads, policy=policy
    )
    gz = ParallelGzipWriter(sink, level=level, threads=os.cpu_count() or 1)
    try:
        with tarfile.open(fileobj=gz, mode="w|", bufsize=MiB, format=tarfile.PAX_FORMAT) as tar:
            for member in members:
                _add_file(tar, member)
        gz.finish()
        result = sink.close()
    except BaseException:
        gz.abandon()
        sink.abort()
        raise
    result.seconds = time.monotonic() - started
    return result


# ----------------------------------------------------------------------------- outputs


class S3MessageBox:
    """State files under ``s3://<bucket>/messages/`` (CONTRACT section 5)."""

    def __init__(self, bucket: str, prefix: str = MESSAGES_PREFIX, client: Any = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client()
        return self._client

    def url(self, name: str) -> str:
        return s3_url(self.bucket, join_key(self.prefix, name))

    def _put(self, name: str, text: str) -> None:
        put_bytes(
            self.client,
            self.bucket,
            join_key(self.prefix, name),
            text.encode("utf-8"),
            content_type="text/plain",
        )

    def _delete(self, name: str) -> None:
        key = join_key(self.prefix, name)
        call_with_retries(
            f"removing {s3_url(self.bucket, key)}",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=key),
            exit_code=ExitCode.S3_UPLOAD_ERROR,
        )

    def start(self, dataset: str) -> None:
        """Remove stale final messages of this dataset, then write ``processing-<ds>``."""
        for stale in (f"error-{dataset}", f"processed-{dataset}.trigger"):
            self._delete(stale)
        self._put(f"processing-{dataset}", "")
        log.info("message %s", self.url(f"processing-{dataset}"))

    def finish(self, dataset: str, ok: bool, lines: list[str]) -> str:
        """Write ``processed-<ds>.trigger`` (ok) or ``error-<ds>``, remove ``processing-<ds>``."""
        name = f"processed-{dataset}.trigger" if ok else f"error-{dataset}"
        other = f"error-{dataset}" if ok else f"processed-{dataset}.trigger"
        self._delete(other)
        self._put(name, "".join(f"{line}\n" for line in lines))
        self._delete(f"processing-{dataset}")
        log.info("message %s", self.url(name))
        return self.url(name)


@dataclass
class S3Output:
    """Delivery to ``s3://bucket/prefix`` (CALCLOUD passes ``s3://<bucket>/outputs/<ds>``)."""

    uri: Uri
    messages: S3MessageBox = field(init=False)
    _client: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.uri.scheme != "s3":
            raise ValueError(f"S3Output needs an s3:// URI, not {self.uri}")
        self.messages = S3MessageBox(self.bucket)

    @property
    def bucket(self) -> str:
        return self.uri.bucket

    @property
    def prefix(self) -> str:
        return self.uri.prefix

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(max_connections=max(10, _env_int("CALDP_S3_THREADS", 4) + 4))
            self.messages._client = self._client
        return self._client

    def check(self) -> None:
        """Fail early with exit 25 unless the output bucket is reachable and writable."""
        client = self.client
        call_with_retries(
            f"reaching output bucket s3://{self.bucket}",
            lambda: client.head_bucket(Bucket=self.bucket),
            exit_code=ExitCode.S3_UPLOAD_ERROR,
        )
        probe = join_key(self.prefix, f".caldp-write-check-{uuid.uuid4().hex}")
        try:
            put_bytes(client, self.bucket, probe, b"caldp write check\n", verify=False)
        except CaldpError as exc:
            raise CaldpError(
                ExitCode.S3_UPLOAD_ERROR,
                f"output s3://{self.bucket}/{self.prefix} is not writable: {exc}",
            ) from exc
        call_with_retries(
            f"removing {s3_url(self.bucket, probe)}",
            lambda: client.delete_object(Bucket=self.bucket, Key=probe),
            exit_code=ExitCode.S3_UPLOAD_ERROR,
        )
        log.info("output s3://%s/%s is writable", self.bucket, self.prefix)

    def tarball_name(self, plan: DeliveryPlan) -> str:
        ds = plan.dataset.name
        return f"{ds}_inputs.tar.gz" if plan.inputs_only else f"{ds}.tar.gz"

    def deliver(self, plan: DeliveryPlan) -> Delivered:
        """Upload the tarball, then the logs; the caller writes the messages afterwards."""
        members = tar_members(plan)
        files: list[str] = []
        lines: list[str] = []
        client = self.client
        if members:
            key = join_key(self.prefix, self.tarball_name(plan))
            try:
                result = upload_tarball(client, self.bucket, key, members)
            except OSError as exc:
                raise CaldpError(
                    ExitCode.S3_UPLOAD_ERROR, f"cannot read a file to deliver: {exc}"
                ) from exc
            url = s3_url(self.bucket, key)
            log.info(
                "delivered %s: %d files, %.1f MB in %d part(s), %.1f s",
                url,
                len(members),
                result.size / 1e6,
                result.parts,
                result.seconds,
            )
            files.append(url)
            lines.append(url)
        for path in _unique(plan.logs):
            key = join_key(self.prefix, path.name)
            try:
                data = path.read_bytes()
            except OSError as exc:  # a missing log must not cost the delivery
                log.warning("log %s not delivered: %s", path, exc)
                continue
            put_bytes(client, self.bucket, key, data, content_type="text/plain")
            files.append(s3_url(self.bucket, key))
        if not lines:
            lines.append(s3_url(self.bucket, self.prefix + "/" if self.prefix else ""))
        return Delivered(files=files, message_lines=lines)


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
                raise CaldpError(ExitCode.S3_UPLOAD_ERROR, f"file to deliver is missing: {path}")
            seen.add(arcname)
            members.append(TarMember(path, arcname))
    return members


def read_object_lines(bucket: str, key: str, *, exit_code: int) -> list[str]:
    """The text lines of a small object (for poller files)."""
    client = make_client()

    def get() -> bytes:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    data = call_with_retries(f"reading {s3_url(bucket, key)}", get, exit_code=exit_code)
    return data.decode("utf-8", errors="replace").splitlines()

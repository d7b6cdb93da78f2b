"""Streaming, verified uploads to S3.

A delivery tarball is never written to local disk: tar and gzip run as a
stream (:func:`upload_tarball`), the gzip compression in parallel blocks
(:class:`ParallelGzipWriter`: one valid gzip member, as pigz makes), and the
compressed stream is cut into multipart-upload parts uploaded in parallel
(:class:`MultipartSink`).  Small objects go up in one PUT (:func:`put_bytes`).
Every object is checked after upload (:func:`verify_object`: size, and SHA-256
checksum or MD5 ETag).  The caller gives the retry policy and the tuning (the
S3 output takes them from the run's settings: ``CALDP_S3_GZIP_LEVEL``, default 1,
``CALDP_S3_THREADS``, parallel uploads, default 4).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import struct
import tarfile
import time
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caldp.errors import OutputError
from caldp.storage.s3_client import (
    RetryPolicy,
    boto_errors,
    call_with_retries,
    error_code,
    s3_url,
)

log = logging.getLogger("caldp.s3")

MiB = 2**20
MIN_PART_BYTES = 8 * MiB  # S3 needs >= 5 MiB for every part but the last
MAX_PARTS = 9000  # S3 allows 10000; keep a margin for the compression overhead
GZIP_BLOCK_BYTES = 2 * MiB  # uncompressed bytes compressed per parallel job
DEFLATE_WINDOW = 32 * 1024


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
    policy: RetryPolicy,
    content_type: str = "binary/octet-stream",
    verify: bool = True,
    only_new: bool = False,
) -> None:
    """PUT a small object with MD5/SHA-256 checks, retried; raise OutputError if it fails.

    ``only_new``: create the object only if the key does not exist (``If-None-Match: *``);
    an existing one fails at once with PreconditionFailed (:func:`precondition_failed`).
    """
    md5 = hashlib.md5(data, usedforsecurity=False).digest()
    sha = hashlib.sha256(data).digest()
    condition = {"IfNoneMatch": "*"} if only_new else {}

    def put() -> None:
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentMD5=_b64(md5),
            ChecksumSHA256=_b64(sha),
            ContentType=content_type,
            **condition,
        )
        if verify:
            verify_object(client, bucket, key, len(data), _b64(sha), md5.hex())

    call_with_retries(
        f"uploading {s3_url(bucket, key)}",
        put,
        error=OutputError,
        policy=policy,
        retry_on=(VerifyError,),
    )


def precondition_failed(exc: BaseException) -> bool:
    """Whether a :func:`put_bytes` failure is an ``only_new`` PUT of a key that exists."""
    cause = exc.__cause__
    return cause is not None and error_code(cause) in ("PreconditionFailed", "412")


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
        threads: int,
        policy: RetryPolicy,
        content_type: str = "application/gzip",
    ):
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_size = max(part_size, 5 * MiB)
        self.threads = max(1, threads)
        self.policy = policy
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
                error=OutputError,
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
            error=OutputError,
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
            error=OutputError,
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
            error=OutputError,
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
    level: int,
    threads: int,
    policy: RetryPolicy,
) -> UploadResult:
    """Stream ``members`` as a tar.gz into ``s3://bucket/key``; nothing is written locally.

    ``level``: the gzip level; ``threads``: the parts uploaded in parallel."""
    started = time.monotonic()
    estimate = sum(m.path.stat().st_size + 1024 for m in members) + 10240
    part_size = max(MIN_PART_BYTES, -(-estimate // MAX_PARTS // MiB) * MiB)
    sink = MultipartSink(client, bucket, key, part_size=part_size, threads=threads, policy=policy)
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

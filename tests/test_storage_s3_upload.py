"""caldp.storage.s3_upload: streamed tarball uploads, parallel gzip, and the check of
what S3 stored (against a real moto server on 127.0.0.1 where S3 is needed).  The
deliveries that use them are tested through the S3 output (test_storage_s3.py)."""

from __future__ import annotations

import gzip
import hashlib
import zlib

import pytest

from caldp.storage import s3_upload

BUCKET = "caldp-test-bucket"


@pytest.mark.s3
def test_verification_catches_a_stored_object_that_differs(s3):
    s3.create_bucket(Bucket=BUCKET)
    data = b"calibrated bytes\n"
    s3.put_object(Bucket=BUCKET, Key="k", Body=data)
    md5 = hashlib.md5(data).hexdigest()
    s3_upload.verify_object(s3, BUCKET, "k", len(data), None, md5)
    with pytest.raises(s3_upload.VerifyError, match="size"):
        s3_upload.verify_object(s3, BUCKET, "k", len(data) + 1, None, md5)
    with pytest.raises(s3_upload.VerifyError, match="ETag"):
        s3_upload.verify_object(s3, BUCKET, "k", len(data), None, hashlib.md5(b"other").hexdigest())


class _Collect:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(bytes(data))


@pytest.mark.parametrize("size", [0, 1, 4096, 65536, 65536 + 7, 5 * 65536 + 123])
def test_parallel_gzip_is_one_valid_gzip_member(size):
    rng = __import__("random").Random(size)
    # Mix of compressible and random data across block boundaries.
    data = b"".join(
        (rng.randbytes(97) if i % 3 else b"FITS header card " * 5) for i in range(size // 97 + 1)
    )[:size]
    sink = _Collect()
    writer = s3_upload.ParallelGzipWriter(sink, level=1, threads=2, block_size=65536)
    for start in range(0, size, 10000):
        writer.write(data[start : start + 10000])
    writer.finish()
    blob = b"".join(sink.chunks)
    assert gzip.decompress(blob) == data  # checks the CRC-32 and size trailer
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert d.decompress(blob) == data and d.eof and d.unused_data == b""

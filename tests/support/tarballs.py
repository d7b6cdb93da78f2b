"""Tarballs for the extraction tests: damaged ones, and ones with very many members.

The damaged ones are damaged the ways a transfer or a disk damages them, built
byte by byte: each takes the members as ``(name, bytes)`` and returns the bytes
of a ``.tar.gz`` that ``gzip -t`` or ``tar`` refuses but that Python's tarfile
alone reads without complaint.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zlib
from pathlib import Path


def tar_bytes(members: list[tuple[str, bytes]]) -> tuple[bytes, list[int]]:
    """An uncompressed tar archive, and the offset where each member's header ends
    after its data (the archive's end-of-archive blocks follow the last one)."""
    buf = io.BytesIO()
    ends = []
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            ends.append(tar.offset)
    return buf.getvalue(), ends


def _gzip_stream(data: bytes, *, flush_at: int | None = None) -> tuple[bytes, int]:
    """gzip of ``data``; with ``flush_at``, also the compressed length that holds exactly
    ``data[:flush_at]`` (a sync flush there, as parallel gzip writers make)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: gzip header and trailer
    if flush_at is None:
        return compressor.compress(data) + compressor.flush(), 0
    head = compressor.compress(data[:flush_at]) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return head + compressor.compress(data[flush_at:]) + compressor.flush(), len(head)


def cut_after_first_member(members: list[tuple[str, bytes]]) -> bytes:
    """The gzip stream cut right where the first member ends: no trailer, no end of archive."""
    raw, ends = tar_bytes(members)
    whole, cut = _gzip_stream(raw, flush_at=ends[0])
    return whole[:cut]


def flipped_byte(members: list[tuple[str, bytes]], member: int = 0, at: int = 0) -> bytes:
    """One byte of member ``member`` flipped (at ``at`` in its data); the gzip trailer keeps
    the CRC of the original bytes, as when a bit flips after compression was checked."""
    raw, ends = tar_bytes(members)
    start = ends[member] - (-len(members[member][1]) % 512) - len(members[member][1])
    damaged = bytearray(raw)
    damaged[start + at] ^= 0x01
    stream, _ = _gzip_stream(bytes(damaged))
    crc = zlib.crc32(raw) & 0xFFFFFFFF
    return stream[:-8] + struct.pack("<II", crc, len(raw) & 0xFFFFFFFF)


def no_trailer(members: list[tuple[str, bytes]]) -> bytes:
    """The whole archive, but the gzip stream lacks its last 8 bytes (CRC and length)."""
    stream, _ = _gzip_stream(tar_bytes(members)[0])
    return stream[:-8]


def no_end_of_archive(members: list[tuple[str, bytes]]) -> bytes:
    """A complete gzip stream of an archive cut after its first member (the cut was made
    before compressing): only the missing end-of-archive block tells."""
    raw, ends = tar_bytes(members)
    return _gzip_stream(raw[: ends[0]])[0]


def garbled_second_header(members: list[tuple[str, bytes]]) -> bytes:
    """A complete gzip stream whose second member's header is garbage (bad checksum)."""
    raw, ends = tar_bytes(members)
    damaged = bytearray(raw)
    damaged[ends[0] : ends[0] + 512] = b"\x7f" * 512
    return _gzip_stream(bytes(damaged))[0]


def many_members(path: Path, count: int) -> Path:
    """A ``.tar.gz`` of ``count`` one-byte members ``m000000`` ... in one folder."""
    with gzip.open(path, "wb", compresslevel=1) as stream:
        for k in range(count):
            info = tarfile.TarInfo(f"m{k:06d}")
            info.size = 1
            stream.write(info.tobuf(tarfile.USTAR_FORMAT) + b"x" + bytes(511))
        stream.write(bytes(1024))
    return path

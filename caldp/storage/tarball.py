"""Safe extraction of input tarballs.

Tarballs are hostile until checked: every member is checked before anything is
written.  Only regular files and folders are accepted; absolute names, ``..``,
links, device files and FIFOs are refused, every path is resolved and must stay
inside the extraction folder, and sizes are bounded so that a decompression
bomb cannot fill the disk.  The archive is read as a stream, so it can come
straight from a download without a local copy.

A tarball is gzip-compressed (``.tar.gz``).  It must be
whole: the gzip stream ends with its trailer and its CRC and length match, and
the archive ends with its end-of-archive block.  tarfile alone checks neither,
and would take a tarball cut after its first member for a complete one.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from caldp.errors import InputError, is_os_memory_error
from caldp.settings import Settings

log = logging.getLogger("caldp.tarball")

DEFAULT_MAX_MEMBERS = 100_000
DISK_MARGIN_BYTES = 64 * 2**20
CHUNK = 4 * 2**20
LIMIT_ENV = "CALDP_MAX_TAR_BYTES"


def byte_limit(settings: Settings) -> int:
    """The most bytes the inputs may take once decompressed (``CALDP_MAX_TAR_BYTES``)."""
    return int(settings.number(LIMIT_ENV))


class TarballError(InputError):
    """The input tarball is missing, unreadable or unsafe."""


# What a member that is neither a regular file nor a folder is, for the error message.
MEMBER_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


class _WholeArchiveTarInfo(tarfile.TarInfo):
    """tarfile ends an archive quietly at a header that is missing, cut short or garbled
    (anywhere but at the start); only the block of zeros that ends an archive ends it here."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.EOFHeaderError:
            raise  # the end-of-archive block
        except tarfile.HeaderError as exc:
            raise tarfile.ReadError(
                f"no end-of-archive block: {exc} at byte {tarfile_.offset} of the archive"
            ) from None


def check_member(member: tarfile.TarInfo, dest: Path) -> Path | None:
    """The path a member would be written to, or None for a folder; raise if unsafe."""
    name = member.name
    if not name or "\0" in name:
        raise TarballError(f"tarball member with an empty or invalid name: {name!r}")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("\\"):
        raise TarballError(f"tarball member with an absolute path: {name!r}")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise TarballError(f"tarball member with '..' in its path: {name!r}")
    if not parts:
        return None
    if not (member.isfile() or member.isdir()):
        kind = MEMBER_KINDS.get(
            member.type, f"of unsupported type {member.type.decode(errors='replace')!r}"
        )
        points_to = f" to {member.linkname!r}" if member.issym() or member.islnk() else ""
        raise TarballError(
            f"tarball member {name!r} is {kind}{points_to}: only regular files and folders "
            "are extracted"
        )
    target = dest.joinpath(*parts)
    resolved = Path(os.path.realpath(target))
    root = Path(os.path.realpath(dest))
    if resolved != root and root not in resolved.parents:
        raise TarballError(f"tarball member would be written outside the folder: {name!r}")
    if member.isdir():
        return None
    return target


def extract_stream(
    fileobj: BinaryIO,
    dest: Path,
    *,
    max_total_bytes: int,
    source: str = "tarball",
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[Path]:
    """Extract a gzipped tar stream into ``dest``; return the files written.

    The members may add up to ``max_total_bytes`` (:func:`byte_limit`).  Raises
    :class:`TarballError` (exit 21) for anything unsafe, truncated or corrupt.
    Files already written are removed on failure.
    """
    dest.mkdir(parents=True, exist_ok=True)
    limit = max_total_bytes
    written: list[Path] = []
    seen: set[Path] = set()
    total = 0
    try:
        unzipped = gzip.GzipFile(fileobj=fileobj, mode="rb")
        with tarfile.open(fileobj=unzipped, mode="r|", tarinfo=_WholeArchiveTarInfo) as tar:
            for count, member in enumerate(tar, start=1):
                if count > max_members:
                    raise TarballError(f"{source}: more than {max_members} members")
                target = check_member(member, dest)
                if target is None:
                    continue
                total += member.size
                if total > limit:
                    raise TarballError(
                        f"{source}: members add up to more than the {limit} byte limit "
                        f"({LIMIT_ENV})"
                    )
                free = shutil.disk_usage(dest).free
                if member.size > free - DISK_MARGIN_BYTES:
                    raise TarballError(
                        f"{source}: member {member.name!r} ({member.size} bytes) does not fit "
                        f"in the {free} bytes free"
                    )
                if target in seen or target.exists():
                    raise TarballError(f"{source}: member {member.name!r} appears twice")
                seen.add(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                written.append(target)  # before writing: a member cut short is removed too
                _write_member(tar, member, target)
        _read_to_the_end(unzipped, source, limit - total)
    except TarballError:
        _remove(written)
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        _remove(written)
        if is_os_memory_error(exc):
            raise
        raise TarballError(f"{source}: unreadable or truncated tarball: {exc}") from exc
    except BaseException:  # MemoryError, SIGTERM, ...: nothing half-extracted stays either
        _remove(written)
        raise
    log.debug("extracted %d files (%d bytes) from %s", len(written), total, source)
    return written


def _read_to_the_end(unzipped: gzip.GzipFile, source: str, allowed: int) -> None:
    """Read what follows the archive's end, up to the gzip trailer, which checks the CRC and
    length of the whole stream (``gzip.BadGzipFile``, or ``EOFError`` for a stream cut short)."""
    while chunk := unzipped.read(CHUNK):
        allowed -= len(chunk)
        if allowed < 0:
            raise TarballError(
                f"{source}: members and what follows them add up to more than the byte "
                f"limit ({LIMIT_ENV})"
            )


def extract_file(path: Path, dest: Path, *, max_total_bytes: int, **kwargs) -> list[Path]:
    try:
        stream = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise TarballError(f"cannot open tarball {path}: {exc}") from exc
    with stream:
        return extract_stream(
            stream, dest, max_total_bytes=max_total_bytes, source=path.name, **kwargs
        )


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    src = tar.extractfile(member)
    if src is None:
        raise TarballError(f"tarball member {member.name!r} has no data")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o644)
    copied = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := src.read(CHUNK):
            copied += len(chunk)
            out.write(chunk)
    if copied != member.size:
        raise TarballError(f"tarball member {member.name!r} is truncated")


def _remove(paths: list[Path]) -> None:
    for p in paths:
        try:
            p.unlink()
        except OSError:
            pass

"""Safe extraction of input tarballs (CONTRACT section 3).

Tarballs are hostile until checked: every member is checked before anything is
written.  Only regular files and folders are accepted; absolute names, ``..``,
links, device files and FIFOs are refused, every path is resolved and must stay
inside the extraction folder, and sizes are bounded so that a decompression
bomb cannot fill the disk.  The archive is read as a stream, so it can come
straight from a download without a local copy.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from caldp.exit_codes import ExitCode
from caldp.sysexit import CaldpError, is_os_memory_error

log = logging.getLogger("caldp.tarball")

DEFAULT_MAX_TOTAL_BYTES = 200 * 2**30  # 200 GiB of members in all
DEFAULT_MAX_MEMBERS = 100_000
DISK_MARGIN_BYTES = 64 * 2**20
CHUNK = 4 * 2**20


class TarballError(CaldpError):
    """The input tarball is missing, unreadable or unsafe."""

    def __init__(self, message: str):
        super().__init__(ExitCode.INPUT_TAR_FILE_ERROR, message)


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
    if member.issym() or member.islnk():
        raise TarballError(f"tarball member is a link: {name!r} -> {member.linkname!r}")
    if member.isdev() or member.isfifo():
        raise TarballError(f"tarball member is a device or FIFO: {name!r}")
    if not (member.isfile() or member.isdir()):
        raise TarballError(f"tarball member of unsupported type {member.type!r}: {name!r}")
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
    source: str = "tarball",
    max_total_bytes: int | None = None,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> list[Path]:
    """Extract a (gzipped or plain) tar stream into ``dest``; return the files written.

    Raises :class:`TarballError` (exit 21) for anything unsafe, truncated or
    corrupt.  Files already written are removed on failure.
    """
    dest.mkdir(parents=True, exist_ok=True)
    limit = max_total_bytes or int(os.environ.get("CALDP_MAX_TAR_BYTES", DEFAULT_MAX_TOTAL_BYTES))
    written: list[Path] = []
    total = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
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
                        "(CALDP_MAX_TAR_BYTES)"
                    )
                free = shutil.disk_usage(dest).free
                if member.size > free - DISK_MARGIN_BYTES:
                    raise TarballError(
                        f"{source}: member {member.name!r} ({member.size} bytes) does not fit "
                        f"in the {free} bytes free"
                    )
                if target.exists() or target in written:
                    raise TarballError(f"{source}: member {member.name!r} appears twice")
                target.parent.mkdir(parents=True, exist_ok=True)
                written.append(target)  # before writing: a member cut short is removed too
                _write_member(tar, member, target)
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


def extract_file(path: Path, dest: Path, **kwargs) -> list[Path]:
    try:
        stream = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise TarballError(f"cannot open tarball {path}: {exc}") from exc
    with stream:
        return extract_stream(stream, dest, source=path.name, **kwargs)


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


def member_name(path: Path, root: Path) -> str:
    return posixpath.join(*path.relative_to(root).parts)

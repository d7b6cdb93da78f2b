"""CRDS rules and reference files from an S3 bucket (the caldp-config-aws profile).

The bucket (``$CRDSBUCKET``, given as ``name``, ``s3://name`` or
``s3://name/prefix``) mirrors a flat CRDS cache::

    s3://<bucket>/config/hst/...       server_config (with download_metadata), bad_files.txt, ...
    s3://<bucket>/mappings/hst/...     .pmap/.imap/.rmap rules
    s3://<bucket>/references/hst/...   reference files

and the local cache uses CRDS's layout ``<crds_path>/{config,mappings,references}/hst/``.
Every reference is checked against the size and sha1 recorded for it in
``config/hst/server_config``'s ``download_metadata`` before it is used; a
download is tried ``CALDP_REFERENCE_RETRIES`` times (default 4),
``CALDP_REFERENCE_RETRY_SECONDS`` apart (default 10).  Failures are exit 27.

The operator may pin the context: the name of the ``.pmap`` object under
``s3://<bucket>/crds_env_vars/`` (:func:`pinned_context`).
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caldp.exit_codes import ExitCode
from caldp.retry import GaveUp, retry
from caldp.storage import s3_client as s3
from caldp.sysexit import CaldpError

log = logging.getLogger("caldp.crds_s3")

OBSERVATORY = "hst"
PIN_PREFIX = "crds_env_vars"
CACHE_SUBDIRS = ("config", "mappings")
CHUNK = 4 * 2**20
DOWNLOAD_THREADS = 8


class ReferenceFetchError(CaldpError):
    """A reference file could not be fetched or failed its checks (exit 27)."""

    def __init__(self, message: str):
        super().__init__(ExitCode.BESTREFS_ERROR, message)


@dataclass(frozen=True)
class Expected:
    size: int
    sha1: str


def _bucket_and_prefix(crds_bucket: str) -> tuple[str, str]:
    try:
        return s3.split_location(crds_bucket.strip())
    except ValueError as exc:
        raise ReferenceFetchError(f"no usable CRDS bucket (CRDSBUCKET={crds_bucket!r})") from exc


def _list_keys(client: Any, bucket: str, prefix: str) -> list[tuple[str, int]]:
    """(key, size) of every object under ``prefix/``."""
    found: list[tuple[str, int]] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        for item in page.get("Contents", []):
            found.append((item["Key"], int(item.get("Size", 0))))
    return found


def pinned_context(bucket: str) -> str | None:
    """The ``.pmap`` name under ``s3://<bucket>/crds_env_vars/``, or None if nothing is pinned.

    Several ``.pmap`` objects are an operator error; the highest-numbered one
    is used and a warning is logged.
    """
    name, prefix = _bucket_and_prefix(bucket)
    client = s3.make_client()
    where = s3.join_key(prefix, PIN_PREFIX)
    keys = s3.call_with_retries(
        f"listing s3://{name}/{where}/",
        lambda: _list_keys(client, name, where),
        exit_code=ExitCode.BESTREFS_ERROR,
    )
    pmaps = sorted(os.path.basename(key) for key, _size in keys if key.endswith(".pmap"))
    if not pmaps:
        log.info("no CRDS context pinned under s3://%s/%s/", name, where)
        return None
    if len(pmaps) > 1:
        log.warning(
            "several CRDS contexts pinned under s3://%s/%s/ (%s); using %s",
            name,
            where,
            ", ".join(pmaps),
            pmaps[-1],
        )
    log.info("CRDS context pinned by the operator: %s", pmaps[-1])
    return pmaps[-1]


def _atomic_download(client: Any, bucket: str, key: str, target: Path) -> None:
    """GET a small object into ``target`` (complete or not at all)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        response = client.get_object(Bucket=bucket, Key=key)
        with open(tmp, "wb") as out:
            for chunk in response["Body"].iter_chunks(CHUNK):
                out.write(chunk)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def prepare_cache(crds_bucket: str, crds_path: Path) -> None:
    """Copy ``config/hst`` and ``mappings/hst`` from the bucket into the cache where missing.

    Files already in the cache are kept.  Failures are exit 27.
    """
    bucket, prefix = _bucket_and_prefix(crds_bucket)
    client = s3.make_client(max_connections=DOWNLOAD_THREADS + 2)
    todo: list[tuple[str, Path]] = []
    for sub in CACHE_SUBDIRS:
        where = s3.join_key(prefix, f"{sub}/{OBSERVATORY}")
        keys = s3.call_with_retries(
            f"listing s3://{bucket}/{where}/",
            lambda where=where: _list_keys(client, bucket, where),
            exit_code=ExitCode.BESTREFS_ERROR,
        )
        if not keys:
            raise ReferenceFetchError(f"s3://{bucket}/{where}/ is empty: not a CRDS cache mirror")
        local_dir = crds_path / sub / OBSERVATORY
        for key, _size in keys:
            relative = key[len(where) + 1 :]
            if not relative or relative.endswith("/") or ".." in relative.split("/"):
                continue
            target = local_dir.joinpath(*relative.split("/"))
            if not target.exists():
                todo.append((key, target))
    if not todo:
        log.info("CRDS cache %s already has config and mappings", crds_path)
        return

    def get(item: tuple[str, Path]) -> None:
        key, target = item
        s3.call_with_retries(
            f"downloading s3://{bucket}/{key}",
            lambda: _atomic_download(client, bucket, key, target),
            exit_code=ExitCode.BESTREFS_ERROR,
        )

    started = time.monotonic()
    with ThreadPoolExecutor(DOWNLOAD_THREADS, thread_name_prefix="caldp-crds") as pool:
        list(pool.map(get, todo))
    log.info(
        "CRDS cache %s: %d config/mapping files from s3://%s in %.1f s",
        crds_path,
        len(todo),
        bucket,
        time.monotonic() - started,
    )


def download_metadata(crds_path: Path) -> dict[str, Expected]:
    """Name -> expected size and sha1, from ``config/hst/server_config``."""
    config = crds_path / "config" / OBSERVATORY / "server_config"
    try:
        info = ast.literal_eval(config.read_text())
        from crds.client.proxy import crds_decode

        metadata = crds_decode(info["download_metadata"])
        return {
            name: Expected(int(item["size"]), str(item["sha1sum"]).lower())
            for name, item in metadata.items()
        }
    except (OSError, ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise ReferenceFetchError(
            f"cannot read reference sizes and sha1sums from {config}: {type(exc).__name__}: {exc}"
        ) from exc


def file_matches(path: Path, expected: Expected) -> str | None:
    """None if ``path`` has the expected size and sha1, else what is wrong."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot read: {exc}"
    if size != expected.size:
        return f"size {size} != {expected.size} expected"
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected.sha1:
        return f"sha1 {digest.hexdigest()} != {expected.sha1} expected"
    return None


def _plain_name(name: str) -> str:
    name = name.strip()
    return name.split("$", 1)[1] if "$" in name else name


def fetch_references(crds_bucket: str, crds_path: Path, names: list[str]) -> list[Path]:
    """Make each reference in ``names`` present and verified in the flat cache; return the paths.

    A file already in the cache is used if it passes the size/sha1 check and
    downloaded again otherwise.  Exit 27 if any cannot be fetched and verified.
    """
    bucket, prefix = _bucket_and_prefix(crds_bucket)
    wanted = sorted({_plain_name(n) for n in names if n and n.strip().upper() not in ("N/A",)})
    for name in wanted:
        if not name or "/" in name or name in (".", ".."):
            raise ReferenceFetchError(f"invalid reference file name {name!r}")
    if not wanted:
        return []
    metadata = download_metadata(crds_path)
    unknown = [n for n in wanted if n not in metadata]
    if unknown:
        raise ReferenceFetchError(
            "no size/sha1 in the cache's download_metadata for: " + ", ".join(unknown)
        )
    ref_dir = crds_path / "references" / OBSERVATORY
    policy = s3.policy_from_env("CALDP_REFERENCE_RETRIES", "CALDP_REFERENCE_RETRY_SECONDS", 4, 10.0)
    client = s3.make_client(max_connections=DOWNLOAD_THREADS + 2)

    def get(name: str) -> Path:
        target = ref_dir / name
        expected = metadata[name]
        if target.exists():
            problem = file_matches(target, expected)
            if problem is None:
                log.debug("reference %s already in the cache", name)
                return target
            log.warning("cached reference %s is bad (%s); downloading it again", name, problem)
        key = s3.join_key(prefix, f"references/{OBSERVATORY}/{name}")
        url = s3.s3_url(bucket, key)
        try:
            retry(
                f"reference {url}",
                lambda: _verified_download(client, bucket, key, target, expected),
                policy,
                s3.boto_errors() + (_BadReference,),
                describe=s3.describe_error,
                log=log,
            )
        except GaveUp as exc:
            raise ReferenceFetchError(
                f"reference {name} could not be fetched from {url} after {exc.attempts} "
                f"attempt(s): {s3.describe_error(exc.last)}"
            ) from exc.last
        log.info("reference %s fetched from %s and verified", name, url)
        return target

    with ThreadPoolExecutor(DOWNLOAD_THREADS, thread_name_prefix="caldp-refs") as pool:
        return list(pool.map(get, wanted))


class _BadReference(Exception):
    pass


def _verified_download(
    client: Any, bucket: str, key: str, target: Path, expected: Expected
) -> None:
    """Download to a temporary name, check size and sha1, then move into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        client.download_file(bucket, key, str(tmp))
        problem = file_matches(tmp, expected)
        if problem:
            raise _BadReference(f"downloaded file fails its check: {problem}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)

"""CRDS rules and reference files from an S3 bucket (the caldp-config-aws profile).

The bucket (``$CRDSBUCKET``, given as ``name``, ``s3://name`` or
``s3://name/prefix``) is read with GETs of named objects only: no listing, so
the job needs nothing but ``s3:GetObject`` on it.  What is read::

    config/hst/server_config           operational context, reference sizes and sha1s
    mappings/hst/<name>                the context's rules, when the bucket has them
    pickles/hst/<context>.pkl          otherwise: the context pickled (CRDS_USE_PICKLED_CONTEXTS)
    references/hst/<name>              each reference file the inputs need

and the local cache uses CRDS's layout ``<crds_path>/{config,mappings,pickles,references}/hst/``.
Of the rules, only the context, the instrument rules of the inputs' instruments
and their reference rules are fetched, each checked against the sha1sum in its
own header.  Every reference is checked against the size and sha1 recorded for
it in ``server_config``'s ``download_metadata`` before it is used; a download is
tried ``CALDP_REFERENCE_RETRIES`` times (default 4), ``CALDP_REFERENCE_RETRY_SECONDS``
apart (default 10); the other GETs as S3 calls are (:func:`caldp.storage.s3_client.retry_policy`).
These numbers come from the run's settings, which every function here is given.
Failures are exit 27.

The operator may pin the context: the name of the ``.pmap`` object under
``s3://<bucket>/crds_env_vars/`` of the processing bucket (:func:`pinned_context`).
"""

from __future__ import annotations

import ast
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caldp.errors import ReferencesError
from caldp.retry import GaveUp, RetryPolicy, retry
from caldp.settings import Settings
from caldp.storage import Uri
from caldp.storage import s3_client as s3

log = logging.getLogger("caldp.crds_s3")

OBSERVATORY = "hst"
PIN_PREFIX = "crds_env_vars"
CHUNK = 4 * 2**20
DOWNLOAD_THREADS = 8


class ReferenceFetchError(ReferencesError):
    """A reference file could not be fetched or failed its checks."""


@dataclass(frozen=True)
class Expected:
    size: int
    sha1: str


def _bucket_and_prefix(crds_bucket: str) -> tuple[str, str]:
    try:
        return s3.split_location(crds_bucket.strip())
    except ValueError as exc:
        raise ReferenceFetchError(f"no usable CRDS bucket (CRDSBUCKET={crds_bucket!r})") from exc


def _list_folder(client: Any, bucket: str, folder: str) -> list[str]:
    """The keys under ``folder/``."""
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=bucket, Prefix=folder + "/")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def pinned_context_of(settings: Settings, *uris: Uri) -> str | None:
    """The context pinned in the processing bucket: the first S3 location among ``uris``
    (None when there is none, or nothing is pinned)."""
    for uri in uris:
        if uri.scheme == "s3":
            return pinned_context(uri.bucket, settings)
    return None


def pinned_context(bucket: str, settings: Settings) -> str | None:
    """The ``.pmap`` name under ``s3://<bucket>/crds_env_vars/``, or None if nothing is pinned.

    Several ``.pmap`` objects are an operator error; the highest-numbered one
    is used and a warning is logged.
    """
    name, prefix = _bucket_and_prefix(bucket)
    client = s3.make_client(settings)
    where = s3.join_key(prefix, PIN_PREFIX)
    keys = s3.call_with_retries(
        f"listing s3://{name}/{where}/",
        lambda: _list_folder(client, name, where),
        error=ReferencesError,
        policy=s3.retry_policy(settings),
    )
    pmaps = sorted(os.path.basename(key) for key in keys if key.endswith(".pmap"))
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


def _absent(exc: ReferencesError) -> bool:
    """True if a GET failed because the object is not there (or, without
    ``s3:ListBucket``, not readable: S3 then answers 403 for a missing object)."""
    return s3.error_code(exc.__cause__) in ("NoSuchKey", "404", "AccessDenied", "403")


def _get(client: Any, bucket: str, key: str, target: Path, policy: RetryPolicy) -> None:
    s3.call_with_retries(
        f"downloading s3://{bucket}/{key}",
        lambda: _atomic_download(client, bucket, key, target),
        error=ReferencesError,
        policy=policy,
    )


def prepare_config(crds_bucket: str, crds_path: Path, settings: Settings) -> None:
    """GET ``config/hst/server_config`` into the cache (every run: the operational
    context and the references' sizes and sha1s change with CRDS deliveries)."""
    bucket, prefix = _bucket_and_prefix(crds_bucket)
    key = s3.join_key(prefix, f"config/{OBSERVATORY}/server_config")
    target = crds_path / "config" / OBSERVATORY / "server_config"
    _get(s3.make_client(settings), bucket, key, target, s3.retry_policy(settings))
    log.info("CRDS server_config from s3://%s/%s", bucket, key)


def prepare_rules(
    crds_bucket: str, crds_path: Path, context: str, instruments: list[str], settings: Settings
) -> str:
    """Make ``context`` loadable offline for ``instruments``; return where its rules came from.

    From ``mappings/hst/`` when the bucket has the context there: the ``.pmap``,
    the ``.imap`` of each instrument and its ``.rmap`` files, fetched by name in
    parallel (mappings already in the cache are kept).  Otherwise the pickled
    context ``pickles/hst/<context>.pkl``, which CRDS loads with
    ``CRDS_USE_PICKLED_CONTEXTS=1``.
    """
    if not context.endswith(".pmap") or "/" in context:
        raise ReferenceFetchError(f"not a CRDS context name: {context!r}")
    bucket, prefix = _bucket_and_prefix(crds_bucket)
    client = s3.make_client(settings, max_connections=DOWNLOAD_THREADS + 2)
    policy = s3.retry_policy(settings)
    folder = crds_path / "mappings" / OBSERVATORY
    pickle = crds_path / "pickles" / OBSERVATORY / f"{context}.pkl"
    where = s3.s3_url(bucket, s3.join_key(prefix, f"mappings/{OBSERVATORY}/"))
    started = time.monotonic()
    if pickle.is_file() and not (folder / context).is_file():
        return str(pickle)
    try:
        _fetch_mappings(client, bucket, prefix, folder, [context], policy)
    except ReferencesError as exc:
        if not _absent(exc):
            raise
        key = s3.join_key(prefix, f"pickles/{OBSERVATORY}/{context}.pkl")
        log.info("%s%s is not there: using the pickled context", where, context)
        try:
            _get(client, bucket, key, pickle, policy)
        except ReferencesError as exc2:
            raise ReferenceFetchError(
                f"CRDS context {context}: neither its rules nor its pickle: {exc}; {exc2}"
            ) from exc2
        return s3.s3_url(bucket, key)
    imaps = _selected(folder / context, instruments)
    _fetch_mappings(client, bucket, prefix, folder, imaps, policy)
    rmaps = [name for imap in imaps for name in _selected(folder / imap, None)]
    _fetch_mappings(client, bucket, prefix, folder, rmaps, policy)
    log.info(
        "CRDS rules of %s for %s: %d mapping(s) from %s ready in %.1f s",
        context,
        ", ".join(instruments),
        1 + len(imaps) + len(rmaps),
        where,
        time.monotonic() - started,
    )
    return where


def _mapping(text: str, name: str) -> Any:
    """The parsed mapping (its selections not loaded), checked against the sha1sum in its header."""
    from crds.core import rmap

    try:
        return rmap.Mapping.from_string(text, name, ignore_checksum=False)
    except Exception as exc:  # noqa: BLE001 - CRDS raises many kinds for a bad mapping
        raise ReferenceFetchError(f"bad CRDS mapping {name}: {type(exc).__name__}: {exc}") from exc


def _selected(path: Path, instruments: list[str] | None) -> list[str]:
    """The mappings that ``path`` selects (a ``.pmap``: for ``instruments`` only)."""
    mapping = _mapping(path.read_text(), path.name)
    wanted = None if instruments is None else {i.upper() for i in instruments}
    missing = sorted((wanted or set()) - {str(k).upper() for k in mapping.selector})
    if missing:
        raise ReferenceFetchError(f"CRDS context {path.name} has no rules for {', '.join(missing)}")
    return sorted(
        {
            str(value)
            for key, value in mapping.selector.items()
            if (wanted is None or str(key).upper() in wanted) and str(value).endswith("map")
        }
    )


def _fetch_mappings(
    client: Any, bucket: str, prefix: str, folder: Path, names: list[str], policy: RetryPolicy
) -> None:
    """GET the named mappings that are not yet in ``folder``, each checked before it is kept."""

    def get(name: str) -> None:
        if "/" in name or not name.endswith("map"):
            raise ReferenceFetchError(f"not a CRDS mapping name: {name!r}")
        target = folder / name
        if target.is_file():
            return
        key = s3.join_key(prefix, f"mappings/{OBSERVATORY}/{name}")
        data = s3.call_with_retries(
            f"downloading s3://{bucket}/{key}",
            lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read(),
            error=ReferencesError,
            policy=policy,
        )
        _mapping(data.decode("utf-8", errors="replace"), name)
        _atomic_write(target, data)

    with ThreadPoolExecutor(DOWNLOAD_THREADS, thread_name_prefix="caldp-crds") as pool:
        list(pool.map(get, names))


def _atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


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


def fetch_references(
    crds_bucket: str, crds_path: Path, references: Mapping[str, str], settings: Settings
) -> list[Path]:
    """Make each reference present and verified where the programs will look for it.

    ``references`` maps file names to their variables (``{"x_bia.fits": "jref"}``);
    each file goes to that variable's folder in the cache's layout
    (:func:`caldp.bestrefs.reference_dirs`).  A file already there is used if it
    passes the size/sha1 check and downloaded again otherwise.  Exit 27 if any
    cannot be fetched and verified.  Returns the paths.
    """
    from caldp.bestrefs import reference_dirs

    bucket, prefix = _bucket_and_prefix(crds_bucket)
    wanted = sorted(references)
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
    dirs = reference_dirs(crds_path)
    policy = settings.retry_policy("CALDP_REFERENCE_RETRIES", "CALDP_REFERENCE_RETRY_SECONDS")
    client = s3.make_client(settings, max_connections=DOWNLOAD_THREADS + 2)

    def get(name: str) -> Path:
        target = Path(dirs[references[name]]) / name
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

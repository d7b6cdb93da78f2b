"""``astroquery:`` inputs: download a dataset's raw files from MAST.

Uses astroquery's own MAST client (``astroquery.mast.Observations``):

* IPPPSSOOT: the observation ``obs_id=<ds>`` in the HST collection (or, when
  MAST files the exposure under its association, the observations of its visit
  ``<ipppss>*``), its product list filtered by ``productSubGroupDescription`` to
  the product types of the instrument (its handler's input suffixes), then
  cut down exactly to the dataset's own files: ``<root>_<type>.fits`` where
  ``<root>`` is the dataset or, for an association, a member listed in its
  ``_asn.fits`` (downloaded first).  Never a name prefix.
* SVM/MVM: ``astroquery:DIR`` or ``astroquery:s3://bucket/prefix`` says where the
  poller file ``<ds>_input.out`` is; the files it lists are downloaded (FLC/FLT),
  and the poller file is copied beside them.

Every file must arrive with the size MAST lists; downloads are retried
(``CALDP_ASTROQUERY_RETRIES`` attempts, default 3, ``CALDP_ASTROQUERY_RETRY_SECONDS``
apart, default 5, doubling).  An empty or partial result is exit 22, never a
silent success.

The MAST server is astroquery's ``conf.server`` setting (astropy configuration
``[mast] server = ...`` or ``astroquery.mast.conf.server``), read when
:func:`fetch` runs; ``CALDP_MAST_SERVER`` overrides it.  These values come from
the run's settings, given to :func:`fetch`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from caldp.datasets import Dataset
from caldp.errors import DownloadError, is_memory_error
from caldp.hstfiles import HstFileError, poller_names, read_association
from caldp.instruments import handler_for
from caldp.retry import GaveUp, RetryPolicy, retry
from caldp.settings import Settings

log = logging.getLogger("caldp.astroquery")

COLLECTION = "HST"

FILENAME_RE = re.compile(r"^([a-z0-9]{9})_([a-z0-9_]+)\.fits$")


class AstroqueryError(DownloadError):
    """MAST has not given the dataset's files (an empty or partial result is one too)."""


def retry_policy(settings: Settings) -> RetryPolicy:
    """MAST's retry policy: ``CALDP_ASTROQUERY_RETRIES``, ``CALDP_ASTROQUERY_RETRY_SECONDS``."""
    return settings.retry_policy("CALDP_ASTROQUERY_RETRIES", "CALDP_ASTROQUERY_RETRY_SECONDS")


def mast_server(settings: Settings) -> str:
    from astroquery.mast import conf

    return (settings.get("CALDP_MAST_SERVER") or str(conf.server)).rstrip("/")


def observations_client(server: str) -> Any:
    """astroquery's Observations client, talking to ``server`` (:func:`mast_server`).

    astroquery derives its request URLs from ``conf.server`` when it is first
    imported; they are derived again here so that a server configured later
    (or by ``CALDP_MAST_SERVER``) is honoured.
    """
    from astroquery.mast import ObservationsClass

    client = ObservationsClass()
    portal = getattr(client, "_portal_api_connection", None)
    urls = {
        "MAST_REQUEST_URL": "/api/v0/invoke",
        "COLUMNS_CONFIG_URL": "/portal/Mashup/Mashup.asmx/columnsconfig",
        "MAST_DOWNLOAD_URL": "/api/v0.1/Download/file",
        "MAST_BUNDLE_URL": "/api/v0.1/Download/bundle",
    }
    if portal is None or not all(hasattr(portal, name) for name in urls):
        raise AstroqueryError("this astroquery version has no MAST portal connection caldp knows")
    if portal.MAST_REQUEST_URL != server + urls["MAST_REQUEST_URL"]:
        for name, path in urls.items():
            setattr(portal, name, server + path)
    return client


def _retrying(what: str, func: Any, policy: RetryPolicy) -> Any:
    """``func()`` retried on any error of astroquery or requests (they raise many types)."""
    try:
        return retry(what, func, policy, (Exception,), is_final=_is_ours, log=log)
    except GaveUp as exc:
        if isinstance(exc.last, AstroqueryError):
            raise exc.last from None
        raise AstroqueryError(
            f"{what} failed after {exc.attempts} attempt(s): {type(exc.last).__name__}: {exc.last}"
        ) from exc.last


def _is_ours(exc: BaseException) -> bool:
    return isinstance(exc, AstroqueryError)


def query_products(client: Any, obs_ids: Iterable[str], policy: RetryPolicy) -> Any:
    """Products (astropy Table) of the HST observations ``obs_ids`` (wildcards allowed, one each)."""
    from astropy.table import vstack

    found = []
    for obs_id in obs_ids:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NoResultsWarning: emptiness is checked here
            table = _retrying(
                f"MAST query obs_id={obs_id}",
                lambda obs_id=obs_id: client.query_criteria(
                    obs_collection=COLLECTION, obs_id=obs_id
                ),
                policy,
            )
        if table is not None and len(table):
            found.append(table)
    if not found:
        return None
    observations = vstack(found) if len(found) > 1 else found[0]
    log.info(
        "MAST observations: %s",
        ", ".join(sorted({str(x) for x in observations["obs_id"]})),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        products = _retrying(
            "MAST product list", lambda: client.get_product_list(observations), policy
        )
    return products if products is not None and len(products) else None


def _row_value(row: Mapping[str, Any] | Any, name: str) -> str:
    try:
        value = row[name]
    except (KeyError, ValueError, IndexError):
        return ""
    import numpy as np

    if value is None or np.ma.is_masked(value):
        return ""
    return str(value).strip()


def split_filename(name: str) -> tuple[str, str] | None:
    """``ldfd01vnq_rawtag_a.fits`` -> ("ldfd01vnq", "RAWTAG_A"); None for other names."""
    m = FILENAME_RE.match(os.path.basename(name).lower())
    return (m.group(1), m.group(2).upper()) if m else None


def select_rows(products: Any, types: Iterable[str], roots: Iterable[str]) -> list[int]:
    """Indexes of product rows that are exactly ``<root>_<type>.fits`` for the given roots/types.

    The file name and ``productSubGroupDescription`` must agree on the type.
    """
    wanted_types = {t.upper() for t in types}
    wanted_roots = {r.lower() for r in roots}
    picked: list[int] = []
    seen: set[str] = set()
    for index, row in enumerate(products):
        name = os.path.basename(_row_value(row, "productFilename")).lower()
        parts = split_filename(name)
        if parts is None or name in seen:
            continue
        root, suffix = parts
        subgroup = _row_value(row, "productSubGroupDescription").upper()
        if root in wanted_roots and suffix in wanted_types and subgroup in ("", suffix):
            picked.append(index)
            seen.add(name)
    return picked


def select_named(products: Any, names: Iterable[str]) -> list[int]:
    """Indexes of product rows whose file name is one of ``names`` (exact)."""
    wanted = {n.lower() for n in names}
    picked: list[int] = []
    seen: set[str] = set()
    for index, row in enumerate(products):
        name = os.path.basename(_row_value(row, "productFilename")).lower()
        if name in wanted and name not in seen:
            picked.append(index)
            seen.add(name)
    return picked


def download(
    client: Any, products: Any, indexes: list[int], dest: Path, policy: RetryPolicy
) -> list[Path]:
    """Download the chosen product rows into ``dest`` (flat), retrying what fails.

    Each file is downloaded on its own (one failure does not stop the others)
    and counts as downloaded when it exists with the size MAST lists.  Exit 22
    if any is still missing after the retries.
    """
    dest.mkdir(parents=True, exist_ok=True)
    todo = list(indexes)
    done: list[Path] = []
    problems: dict[str, str] = {}

    def download_missing() -> None:
        failed = []
        for index in todo:
            row = products[index]
            name = os.path.basename(_row_value(row, "productFilename"))
            path = dest / name
            problem = _download_one(client, products[[index]], dest)
            problem = problem or _check_size(path, _row_value(row, "size"))
            if problem:
                problems[name] = problem
                path.unlink(missing_ok=True)
                failed.append(index)
            else:
                problems.pop(name, None)
                done.append(path)
        todo[:] = failed
        if todo:
            raise _Incomplete(
                f"{len(todo)} of {len(indexes)} MAST files not downloaded: "
                + "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
            )

    try:
        retry("MAST download", download_missing, policy, (_Incomplete,), log=log)
    except GaveUp as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
        raise AstroqueryError(
            f"{len(todo)} of {len(indexes)} files could not be downloaded from MAST "
            f"after {exc.attempts} attempt(s): {detail}"
        ) from None
    return done


class _Incomplete(Exception):
    """Some files of a MAST download are still missing."""


def _download_one(client: Any, table: Any, dest: Path) -> str | None:
    """Download one product row; return what went wrong, if astroquery said so."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            manifest = client.download_products(
                table, download_dir=str(dest), flat=True, cache=False, verbose=False
            )
    except Exception as exc:  # noqa: BLE001 - requests/astroquery errors
        if is_memory_error(exc):
            raise  # memory errors keep their own exit codes: never 22
        return f"{type(exc).__name__}: {exc}"
    if manifest is None or not len(manifest):
        return "astroquery downloaded nothing"
    status = str(manifest["Status"][0])
    if status != "COMPLETE":
        return f"{status}: {manifest['Message'][0]}"
    return None


def _check_size(path: Path, listed: str) -> str | None:
    if not path.is_file():
        return "not downloaded"
    try:
        size = int(float(listed)) if listed else -1
    except ValueError:
        size = -1
    if size > 0 and path.stat().st_size != size:
        return f"size {path.stat().st_size} != {size} listed by MAST"
    return None


def _fetch_exposures(dataset: Dataset, dest: Path, settings: Settings) -> list[Path]:
    ds = dataset.name
    handler = handler_for(dataset)
    types = handler.mast_product_types
    server = mast_server(settings)
    client = observations_client(server)
    policy = retry_policy(settings)
    log.info("asking MAST (%s) for %s: %s", server, ds, ", ".join(types))
    products = query_products(client, [ds], policy)
    if products is None:
        # Exposures of an association may be filed under the association only.
        products = query_products(client, [ds[:6] + "*"], policy)
    if products is None:
        raise AstroqueryError(f"MAST has no HST observation {ds}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        typed = client.filter_products(products, productSubGroupDescription=list(types))
    roots = {ds}
    files: list[Path] = []
    members: list[str] = []
    if dataset.is_association:
        asn_rows = select_rows(typed, ["ASN"], [ds])
        if not asn_rows:
            raise AstroqueryError(f"MAST lists no association table {ds}_asn.fits")
        files += download(client, typed, asn_rows, dest, policy)
        try:
            members = read_association(files[0]).exposures
        except HstFileError as exc:
            raise AstroqueryError(str(exc)) from exc
        roots |= set(members)
        log.info("association %s members: %s", ds, ", ".join(members) or "none")
    rows = select_rows(typed, [t for t in types if t != "ASN"], roots)
    if not rows:
        raise AstroqueryError(
            f"MAST lists no {'/'.join(types)} files for {ds} (an empty result is an error)"
        )
    files += download(client, typed, rows, dest, policy)
    got_roots = {split_filename(p.name)[0] for p in files if split_filename(p.name)}
    if handler.members_have_files:
        missing = sorted(set(members) - got_roots)
        if missing:
            raise AstroqueryError(
                f"partial result for {ds}: MAST lists no files for members {', '.join(missing)}"
            )
    if not any(split_filename(p.name) and split_filename(p.name)[1] != "ASN" for p in files):
        raise AstroqueryError(f"partial result for {ds}: only the association table")
    log.info("downloaded %d files of %s from MAST", len(files), ds)
    return files


def _mast_names(lines: list[str], source: str) -> list[str]:
    """The poller file's names, each of which must be a MAST file name."""
    try:
        names = poller_names(lines, source)
    except HstFileError as exc:
        raise AstroqueryError(str(exc)) from exc
    for name in names:
        if not FILENAME_RE.match(name):
            raise AstroqueryError(
                f"{source}: {name!r} is not a MAST file name (<ipppssoot>_<type>.fits, lower case)"
            )
    return names


def _read_poller(
    location: str, dataset: Dataset, dest: Path, settings: Settings
) -> tuple[Path, list[str]]:
    """Copy ``<ds>_input.out`` from ``location`` (folder or s3://) into ``dest``; return it and its files."""
    name = f"{dataset.name}_input.out"
    target = dest / name
    dest.mkdir(parents=True, exist_ok=True)
    if location.startswith("s3://"):
        from caldp.storage import s3

        bucket, prefix = s3.split_location(location)
        key = s3.join_key(prefix, name)
        lines = s3.read_object_lines(bucket, key, settings)
        target.write_text("".join(f"{line}\n" for line in lines))
        source = s3.s3_url(bucket, key)
    else:
        path = Path(location or ".") / name
        try:
            if path.resolve() != target.resolve():
                shutil.copyfile(path, target)
            lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise AstroqueryError(f"cannot read the poller file {path}: {exc}") from exc
        source = str(path)
    return target, _mast_names(lines, source)


def _fetch_mosaic(location: str, dataset: Dataset, dest: Path, settings: Settings) -> list[Path]:
    poller, names = _read_poller(location, dataset, dest, settings)
    server = mast_server(settings)
    client = observations_client(server)
    policy = retry_policy(settings)
    visits = sorted({n[:6] for n in names})
    log.info(
        "asking MAST (%s) for the %d files of %s (visits %s)",
        server,
        len(names),
        poller.name,
        ", ".join(visits),
    )
    products = query_products(client, [f"{v}*" for v in visits], policy)
    if products is None:
        raise AstroqueryError(f"MAST has no HST observations for the visits of {poller.name}")
    rows = select_named(products, names)
    listed = {os.path.basename(_row_value(products[i], "productFilename")).lower() for i in rows}
    missing = sorted(set(names) - listed)
    if missing:
        raise AstroqueryError(
            f"partial result: MAST lists no {', '.join(missing[:10])}"
            + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        )
    files = download(client, products, rows, dest, policy)
    log.info("downloaded %d files listed in %s from MAST", len(files), poller.name)
    return [poller, *files]


def fetch(location: str, dataset: Dataset, dest: Path, settings: Settings) -> list[Path]:
    """Download the dataset's inputs from MAST into ``dest``; return the files.

    ``location`` is only used by SVM/MVM (where the poller file is).  Any
    failure, an empty or a partial result is exit 22.
    """
    if dataset.is_mosaic:
        return _fetch_mosaic(location, dataset, dest, settings)
    return _fetch_exposures(dataset, dest, settings)

"""Previews of calibrated HST products (docs/interface.rst, Previews).

* Image previews (ACS, WFC3, SVM, MVM): ``<base>.jpg`` and ``<base>_thumb.jpg``
  (:mod:`caldp.previews.images`).
* Spectral previews (STIS, COS): ``<base>.png``, ``<base>_thumb.png`` and
  ``<base>_prev.fits`` from the archive's previewer spec-plots
  (:mod:`caldp.previews.spectra`).
* Colour previews (SVM/MVM with two or more filters)
  (:mod:`caldp.previews.colour`).

A file that cannot be previewed is logged with the reason and skipped; the
others are still made, and :class:`PreviewReport` says what failed.  Memory
errors are not swallowed: they propagate so that the pipeline reports them
as memory errors.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from caldp.errors import is_memory_error
from caldp.hstfiles import HstFileError, read_association
from caldp.instruments import HANDLERS, Handler, mosaic_by_product
from caldp.instruments.model import DEFAULT_THUMB_SIZE
from caldp.sysexit import describe

log = logging.getLogger("caldp.previews")

FITS_EXTENSIONS = (".fits", ".fits.gz")


@dataclass
class PreviewReport:
    """What a preview run made and what it could not make."""

    made: list[Path] = field(default_factory=list)  # preview files written
    products: list[Path] = field(default_factory=list)  # the product files previewed
    failures: dict[str, str] = field(default_factory=dict)  # product file name -> reason

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures


def split_product_name(name: str) -> tuple[str, str] | None:
    """``('j8bt05njq', 'raw')`` for ``j8bt05njq_raw.fits`` (or ``.fits.gz``); None if not FITS."""
    low = name.lower()
    for ext in FITS_EXTENSIONS:
        if low.endswith(ext):
            root, sep, suffix = low[: -len(ext)].rpartition("_")
            return (root, suffix) if sep and root else None
    return None


def _fits_files(product_dir: Path) -> list[Path]:
    return sorted(
        p for p in product_dir.iterdir() if p.is_file() and split_product_name(p.name) is not None
    )


def _association_rootnames(product_dir: Path, dataset_name: str) -> set[str]:
    """Member and product rootnames listed in ``<ds>_asn.fits``, if that file is there."""
    for ext in FITS_EXTENSIONS:
        asn = product_dir / f"{dataset_name}_asn{ext}"
        if asn.exists():
            try:
                return read_association(asn).rootnames
            except HstFileError as exc:
                log.warning("%s (members found by their ASN_ID)", exc)
    return set()


def _header_asn_id(path: Path) -> str:
    from astropy.io import fits

    try:
        return str(fits.getval(path, "ASN_ID", 0)).strip().lower()
    except Exception as exc:  # no keyword, or not readable: then not a member by header
        if is_memory_error(exc):
            raise
        return ""


def _is_dataset_member(
    path: Path, handler: Handler, dataset_name: str, rootnames: set[str]
) -> bool:
    root, _suffix = split_product_name(path.name)  # type: ignore[misc]
    if handler.is_product is not None:
        from caldp.datasets import parse

        return handler.is_product(parse(dataset_name), root)
    if root in rootnames:
        return True
    # An association product or member missing from the table: its header names the association.
    return dataset_name.endswith("0") and _header_asn_id(path) == dataset_name


def select_products(kind: str, product_dir: Path, dataset_name: str) -> list[Path]:
    """The product files of this dataset that get a preview (kind: a key of ``HANDLERS``).

    Membership is exact: the dataset's own rootname, the rootnames its
    association table lists, files whose ``ASN_ID`` is the association (IPPPSSOOT
    datasets), the mosaic's own products (its handler's ``is_product``); only the
    kind's preview suffixes are kept.
    """
    handler = _handler(kind)
    dataset_name = dataset_name.lower()
    candidates = [
        p
        for p in _fits_files(Path(product_dir))
        if split_product_name(p.name)[1] in handler.preview_suffixes  # type: ignore[index]
    ]
    rootnames = {dataset_name}
    if not handler.mosaic and candidates:
        rootnames |= _association_rootnames(Path(product_dir), dataset_name)
    return [p for p in candidates if _is_dataset_member(p, handler, dataset_name, rootnames)]


def _handler(kind: str) -> Handler:
    handler = HANDLERS.get(kind.lower())
    if handler is None:
        raise ValueError(f"unknown dataset kind {kind!r}")
    return handler


def preview_product(path: Path, preview_dir: Path, kind: str) -> list[Path]:
    """Make the previews of one product file (image or spectrum by its suffix)."""
    handler = _handler(kind)
    split = split_product_name(path.name)
    suffix = split[1] if split else ""
    if suffix in handler.spectral_suffixes:
        from caldp.previews.spectra import make_spectral_previews

        return make_spectral_previews(path, preview_dir)
    if suffix in handler.image_suffixes:
        from caldp.previews.images import make_image_previews

        return make_image_previews(path, preview_dir, handler.thumb_size)
    raise ValueError(f"no preview is made for {kind} files of type {suffix or path.name!r}")


def _gist(warning: warnings.WarningMessage) -> str:
    """The informative line of a warning (astropy's say where, then what, then advice)."""
    lines = [line.strip() for line in str(warning.message).splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else (lines[0] if lines else warning.category.__name__)


def _gists(caught: list[warnings.WarningMessage]) -> list[str]:
    """What the warnings about the file said, each once (not the libraries' deprecations)."""
    about_code = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
    return list(dict.fromkeys(_gist(w) for w in caught if not issubclass(w.category, about_code)))


def _attempt(report: PreviewReport, label: str, action, *args) -> None:
    """Run one preview action, log what it made and how long it took, or why it failed
    (once, with the gist of any warning the file's reading gave)."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            made = action(*args)
    except Exception as exc:
        if is_memory_error(exc):
            raise
        reason = describe(exc)
        gists = _gists(caught)
        if gists:
            reason += f" ({'; '.join(gists)})"
        report.failures[label] = reason
        log.error("%s: no preview: %s", label, reason)
        return
    for gist in _gists(caught):
        log.warning("%s: %s", label, gist)
    report.made.extend(made)
    log.info(
        "%s -> %s (%.2f s)",
        label,
        ", ".join(p.name for p in made),
        time.perf_counter() - start,
    )


def preview_files(files: list[Path], kinds: list[str], preview_dir: Path) -> PreviewReport:
    """Previews of the given product files (``kinds[i]`` is the dataset kind of ``files[i]``)."""
    from caldp.previews.colour import colour_groups, make_colour_preview

    preview_dir = Path(preview_dir)
    preview_dir.mkdir(parents=True, exist_ok=True)
    report = PreviewReport()
    for path, kind in zip(files, kinds, strict=True):
        _attempt(report, path.name, preview_product, path, preview_dir, kind)
    mosaics = [p for p, k in zip(files, kinds, strict=True) if _handler(k).mosaic]
    for group in colour_groups(mosaics):
        handler = mosaic_by_product(group.prefix)
        size = handler.thumb_size if handler else DEFAULT_THUMB_SIZE
        _attempt(report, group.name, make_colour_preview, group, preview_dir, size)
    return report


def make_previews(
    kind: str, dataset_name: str, product_dir: Path, preview_dir: Path
) -> PreviewReport:
    """Make every preview of the products in product_dir, writing into preview_dir."""
    start = time.perf_counter()
    kind = kind.lower()
    products = select_products(kind, Path(product_dir), dataset_name)
    if not products:
        log.info("%s: no %s product gets a preview", dataset_name, kind.upper())
    report = preview_files(products, [kind] * len(products), Path(preview_dir))
    report.products = products
    log.info(
        "%s: %d preview files from %d products, %d failed (%.2f s)",
        dataset_name,
        len(report.made),
        len(products),
        len(report.failures),
        time.perf_counter() - start,
    )
    return report


__all__ = ["PreviewReport", "make_previews", "select_products", "preview_files"]

"""``caldp-previews [-o DIR] FILE...``: the pipeline's previews for any HST product.

Image previews for ACS and WFC3 images and for SVM/MVM drizzled products,
spectral previews for STIS and COS spectra, colour previews for the filter
products of one SVM visit or MVM skycell given together.  Exit status 0 when
every preview was made, 28 when some failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from caldp import instruments
from caldp.exit_codes import ExitCode
from caldp.previews import preview_files, split_product_name

log = logging.getLogger("caldp.previews")


def product_kind(path: Path) -> str | None:
    """The dataset kind whose preview rules apply to this file, or None when none do."""
    split = split_product_name(path.name)
    if split is None:
        return None
    root, suffix = split
    handler = (
        instruments.mosaic_by_product(root)
        or _instrument_handler(path)
        or instruments.by_letter(root[:1])
    )
    return handler.kind if handler and suffix in handler.preview_suffixes else None


def _instrument_handler(path: Path) -> instruments.Handler | None:
    from astropy.io import fits

    try:
        instrument = str(fits.getval(path, "INSTRUME", 0))
    except (KeyError, OSError):
        return None
    return instruments.by_title(instrument)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caldp-previews",
        description=(
            "Make the archive previews of HST products: JPEG images (full size and "
            "thumbnail) for ACS/WFC3 images and SVM/MVM mosaics, PNG plots and FITS "
            "previews for STIS/COS spectra, colour JPEGs for SVM/MVM filter sets."
        ),
        epilog="Exit status: 0 all previews made, 28 some failed, 2 bad arguments.",
    )
    parser.add_argument(
        "-o",
        "--output-dir",
        default=".",
        metavar="DIR",
        help="directory for the previews (created if needed; default: current directory)",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="HST product FITS files")
    parser.add_argument("-v", "--verbose", action="store_true", help="also log debug messages")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for bad usage
        return int(exc.code or 0)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return _run(args)
    finally:
        log.removeHandler(handler)


def _run(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        log.error("no such file: %s", ", ".join(missing))
        return int(ExitCode.CMDLINE_ERROR)
    chosen, kinds = [], []
    for path in files:
        kind = product_kind(path)
        if kind is None:
            log.warning("%s: not a product that gets a preview; skipped", path.name)
            continue
        chosen.append(path)
        kinds.append(kind)
    if not chosen:
        log.error("none of the files is a product that gets a preview")
        return int(ExitCode.CMDLINE_ERROR)
    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        log.error("%s is not a directory", out_dir)
        return int(ExitCode.CMDLINE_ERROR)
    created = not out_dir.exists()
    report = preview_files(chosen, kinds, out_dir)
    if created and not any(out_dir.iterdir()):
        out_dir.rmdir()  # made for previews that all failed
    if report.ok:
        return int(ExitCode.SUCCESS)
    log.error("%d preview(s) failed", len(report.failures))
    return int(ExitCode.CREATE_PREVIEWS_ERROR)


if __name__ == "__main__":
    sys.exit(main())

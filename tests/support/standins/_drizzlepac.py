"""STAND-IN for tests, never shipped: drizzlepac's runastrodriz, runsinglehap, runmultihap.

Command lines::

    runastrodriz [-h] [-b] [-d] [-a] [-f] [-g] [-i] [-v] [-n N] input
    runsinglehap [-h] [-d] [-l LEVEL] <ds>_input.out
    runmultihap [-h] [-d] [-l LEVEL] <skycell>_input.out

Bad command lines exit 2 with the usage on stderr (argparse's status); failures
inside the work print a Python traceback and exit 1, as the real programs do.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from _standin import (
    PYTHON_ERROR,
    STANDIN_VERSION,
    Abort,
    Reporter,
    _frames,
    before_work,
    drizzled_file,
    final_status,
    imsets,
    mosaic,
    open_references,
    python_traceback,
    read_asn,
    split_name,
    want_products,
    write_hdus,
)

USAGE = {
    "runastrodriz": "usage: runastrodriz [-h] [-b] [-d] [-a] [-f] [-g] [-i] [-v] [-n N] input",
    "runsinglehap": "usage: runsinglehap [-h] [-d] [-l LOG_LEVEL] input_filename",
    "runmultihap": "usage: runmultihap [-h] [-d] [-l LOG_LEVEL] input_filename",
}


def _bad(program: str, message: str) -> Abort:
    return Abort(2, f"{USAGE[program]}\n{program}: error: {message}")


def _fail(program: str, error: str) -> Abort:
    """A failure inside the work: a traceback and status 1."""
    python_traceback(program, _frames(program), error)
    return Abort(PYTHON_ERROR)


def parse_args(program: str, argv: list[str]) -> str | int:
    """The single input name, or an exit status for -h."""
    flags = "bdafgiv" if program == "runastrodriz" else "d"
    valued = "n" if program == "runastrodriz" else "l"
    positional: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(USAGE[program])
            return 0
        if arg == "--version":
            print(f"{program} STAND-IN {STANDIN_VERSION}")
            return 0
        if arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            while letters:
                letter, letters = letters[0], letters[1:]
                if letter == valued:
                    value = letters or (args.pop(0) if args else "")
                    letters = ""
                    if not value.isdigit():
                        raise _bad(
                            program, f"argument -{letter}: expected an integer, not {value!r}"
                        )
                elif letter not in flags:
                    raise _bad(program, f"unrecognized arguments: -{letter}")
        else:
            positional.append(arg)
    if len(positional) != 1:
        raise _bad(program, "exactly one input file is required")
    return positional[0]


# ---------------------------------------------------------------------------
# runastrodriz


def _members(program: str, infile: Path) -> tuple[str, list[str]]:
    root, suffix = split_name(str(infile))
    if suffix == "asn":
        rows = read_asn(infile)
        return root, [name for name, kind, present in rows if kind.startswith("EXP-") and present]
    if suffix in ("raw", "flt", "flc"):
        return root, [root]
    raise _fail(program, f"ValueError: Input file {infile} is not an association, raw or flt file")


def run_astrodriz(program: str, argv: list[str]) -> int:
    from astropy.io import fits

    parsed = parse_args(program, argv)
    if isinstance(parsed, int):
        return parsed
    infile = Path(parsed)
    if not infile.is_file():
        raise _fail(program, f"FileNotFoundError: [Errno 2] No such file or directory: '{infile}'")
    root, members = _members(program, infile)
    out = Reporter(program)
    for member in members:
        out.add_trailer(member)
    if root not in members:
        out.add_trailer(root)
    out.line(f"*** runastrodriz STAND-IN {STANDIN_VERSION} (not drizzlepac) ***")
    out.note(f"Processing {infile.name}: {len(members)} exposure(s)")
    before_work(program, out)

    flts = [Path(f"{m}_flt.fits") for m in members]
    flcs = [Path(f"{m}_flc.fits") for m in members]
    for path in flts:
        if not path.is_file():
            out.line(f"ERROR: calibrated input {path} not found")
            raise _fail(
                program, f"FileNotFoundError: [Errno 2] No such file or directory: '{path}'"
            )
    for path in flts:
        problems = open_references(fits.getheader(path))
        if problems:
            out.line(f"ERROR: {path}: {problems[0]}")
            raise _fail(
                program, f"ValueError: reference file of {path} not resolved: {problems[0]}"
            )
    outputs: list[tuple[str, list[Path]]] = [("drz", flts)]
    if all(path.is_file() for path in flcs):
        outputs.append(("drc", flcs))
    if want_products(program):
        for suffix, sources in outputs:
            product = Path(f"{root}_{suffix}.fits")
            _drizzle(program, sources, product)
            out.note(f"Writing {product.name} from {len(sources)} input(s)")
        for member, flt in zip(members, flts, strict=True):
            hlet = Path(f"{member}_hlet.fits")
            _headerlet(program, flt, hlet)
            out.line(f"Writing {hlet.name}")
    out.note("runastrodriz STAND-IN done")
    return final_status(program)


def _drizzle(program: str, sources: list[Path], product: Path) -> Path:
    import numpy as np
    from astropy.io import fits

    images, first_primary, first_sci = [], None, None
    for path in sources:
        with fits.open(path) as hdul:
            chips = [np.asarray(h.data, dtype=np.float32) for h in imsets(hdul)]
            exptime = float(hdul[0].header.get("EXPTIME", 1.0) or 1.0)
            images.append(mosaic(chips) / np.float32(exptime))
            if first_primary is None:
                first_primary = hdul[0].header.copy()
                first_sci = imsets(hdul)[-1].header.copy()
    combined = np.mean(images, axis=0)
    return drizzled_file(product, program, first_primary, combined, first_sci)


def _headerlet(program: str, flt: Path, hlet: Path) -> Path:
    from astropy.io import fits

    with fits.open(flt) as hdul:
        primary = fits.PrimaryHDU()
        primary.header["HDRNAME"] = (f"{hlet.stem}", "headerlet name")
        primary.header["DESTIM"] = (hdul[0].header.get("ROOTNAME", ""), "destination observation")
        primary.header["WCSNAME"] = ("IDC_STANDIN", "WCS name (stand-in)")
        primary.header["DISTNAME"] = ("standin_distortion", "distortion model (stand-in)")
        primary.header.add_history(f"STAND-IN {program} for tests: not a real headerlet")
        hdus = [primary]
        for extver, sci in enumerate(imsets(hdul), start=1):
            ext = fits.ImageHDU(name="SIPWCS", ver=extver)
            for key in ("CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CTYPE1", "CTYPE2"):
                if key in sci.header:
                    ext.header[key] = sci.header[key]
            for key in ("CD1_1", "CD1_2", "CD2_1", "CD2_2"):
                if key in sci.header:
                    ext.header[key] = sci.header[key]
            hdus.append(ext)
    return write_hdus(hlet, hdus)


# ---------------------------------------------------------------------------
# runsinglehap / runmultihap


@dataclass
class PollerRow:
    filename: str
    proposal_id: str
    obset_id: str
    filters: str
    detector: str
    skycell: str
    pathname: str


def read_poller(program: str, path: Path) -> list[PollerRow]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) in (1, 2):  # simple poller file: the rest comes from the headers
            rows.append(PollerRow(fields[0], "", "", "", "", "", ""))
        elif len(fields) == 8:
            rows.append(
                PollerRow(fields[0], fields[1], fields[3], fields[5], fields[6], "", fields[7])
            )
        elif len(fields) == 10:
            rows.append(
                PollerRow(
                    fields[0], fields[1], fields[3], fields[5], fields[6], fields[7], fields[9]
                )
            )
        else:
            raise _fail(
                program,
                f"ValueError: {path.name} line {number}: poller lines have 1, 2, 8 or 10"
                f" comma-separated fields, not {len(fields)}",
            )
    if not rows:
        raise _fail(program, f"ValueError: poller file {path.name} lists no files")
    return rows


def _filter_name(header) -> str:
    instrument = str(header.get("INSTRUME", "")).strip().upper()
    if instrument == "ACS":
        names = [str(header.get("FILTER1", "")), str(header.get("FILTER2", ""))]
    else:
        names = [str(header.get("FILTER", ""))]
    kept = [n.strip().lower() for n in names if n.strip() and "clear" not in n.lower()]
    return "-".join(kept) or "clear"


def run_hap(program: str, argv: list[str]) -> int:
    from astropy.io import fits

    parsed = parse_args(program, argv)
    if isinstance(parsed, int):
        return parsed
    poller = Path(parsed)
    if not poller.is_file():
        raise _fail(program, f"FileNotFoundError: [Errno 2] No such file or directory: '{poller}'")
    dataset = poller.name.removesuffix("_input.out")
    out = Reporter(program)
    log = Path("astrodrizzle.log")
    out.line(f"*** {program} STAND-IN {STANDIN_VERSION} (not drizzlepac) ***")
    out.note(f"Processing poller file {poller.name}")
    rows = read_poller(program, poller)
    before_work(program, out)

    groups: dict[tuple[str, str, str], list[Path]] = {}
    naming: dict[str, str] = {}
    for row in rows:
        local = Path(row.filename)
        if not local.is_file():
            if row.pathname and Path(row.pathname).is_file():
                shutil.copy(row.pathname, local)
                out.line(f"Input image {row.filename} copied from {row.pathname}")
            else:
                out.line(f"ERROR: Input image {row.filename} not found")
                raise _fail(
                    program,
                    f"Exception: Input image {row.filename} missing from current working"
                    " directory and from the path specified in the poller file. Exiting...",
                )
        header = fits.getheader(local)
        problems = open_references(header)
        if problems:
            out.line(f"ERROR: {local}: {problems[0]}")
            raise _fail(program, f"OSError: reference file of {local} not opened: {problems[0]}")
        instrument = str(header.get("INSTRUME", "")).strip().lower()
        detector = (row.detector or str(header.get("DETECTOR", ""))).strip().lower()
        filt = (row.filters.lower() if row.filters else _filter_name(header)).replace(";", "-")
        groups.setdefault((instrument, detector, filt), []).append(local)
        naming.setdefault("proposal", row.proposal_id or str(header.get("PROPOSID", "")))
        naming.setdefault("obset", (row.obset_id or str(header.get("LINENUM", "00"))[:2]).lower())
        naming.setdefault("ipppss", row.filename[:6].lower())
        naming.setdefault("skycell", (row.skycell or dataset).lower())
        naming.setdefault("program_id", row.filename[1:4].lower())

    products: list[Path] = []
    if want_products(program):
        totals: dict[tuple[str, str], list[Path]] = {}
        for (instrument, detector, filt), sources in sorted(groups.items()):
            suffix = "drc" if all(p.name.endswith("_flc.fits") for p in sources) else "drz"
            if program == "runsinglehap":
                name = (
                    f"hst_{naming['proposal']}_{naming['obset']}_{instrument}_{detector}_{filt}"
                    f"_{naming['ipppss']}_{suffix}.fits"
                )
                totals.setdefault((instrument, detector), []).extend(sources)
            else:
                name = f"hst_{naming['skycell']}_{instrument}_{detector}_{filt}_all_{suffix}.fits"
            products.append(_hap_product(program, sources, Path(name), filt))
            out.note(f"Writing {name}")
        for (instrument, detector), sources in sorted(totals.items()):
            suffix = "drc" if all(p.name.endswith("_flc.fits") for p in sources) else "drz"
            name = (
                f"hst_{naming['proposal']}_{naming['obset']}_{instrument}_{detector}_total"
                f"_{naming['ipppss']}_{suffix}.fits"
            )
            products.append(_hap_product(program, sources, Path(name), "total"))
            out.note(f"Writing {name}")
    if program == "runsinglehap":
        instrument = next(iter(groups))[0]
        manifest = Path(f"{instrument}_{naming['program_id']}_{naming['obset']}_manifest.txt")
    else:
        manifest = Path(f"{naming['skycell']}_manifest.txt")
    manifest.write_text("".join(f"{p.name}\n" for p in products), encoding="utf-8")
    out.line(f"Wrote manifest {manifest.name} ({len(products)} products)")
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"{program} STAND-IN: {len(rows)} inputs, {len(products)} products\n")
        for product in products:
            handle.write(f"  {product.name}\n")
    out.note(f"{program} STAND-IN done")
    return final_status(program)


def _hap_product(program: str, sources: list[Path], product: Path, filt: str) -> Path:
    path = _drizzle(program, sources, product)
    from astropy.io import fits

    with fits.open(path, mode="update") as hdul:
        hdul[0].header["FILTER"] = (filt.upper(), "filter(s) of this product")
        hdul[0].header["NINPUTS"] = (len(sources), "number of input exposures")
    return path

"""STAND-IN for tests, never shipped: hstcal's calacs.e, calwf3.e and cs0.e.

Command lines::

    calacs.e [--help] [-t] [-s] [-v] [-q] [-r] [--version] [-1|--nthreads N] input
    calwf3.e [--help] [-t] [-s] [-v] [-q] [-r] [--version] [-1|--nthreads N] input
    cs0.e [--help] [-t] [-s] [-v] [-q] [-r] [--version] input [input ...]

``input`` is an ``_asn.fits`` or ``_raw.fits`` file (cs0.e: ``_raw.fits`` or
``_wav.fits``). Exit 0 on success, 2 on any error (hstcal's error status).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from _standin import (
    HSTCAL_ERROR,
    STANDIN_VERSION,
    Abort,
    Reporter,
    before_work,
    calibrate_sci,
    final_status,
    hms_now,
    image_set,
    imsets,
    open_references,
    read_asn,
    split_name,
    stamp,
    want_products,
    write_hdus,
)


@dataclass(frozen=True)
class Flavour:
    title: str
    instrument: str
    input_suffixes: tuple[str, ...]
    many_inputs: bool = False


FLAVOURS = {
    "calacs.e": Flavour("CALACS", "ACS", ("asn", "raw")),
    "calwf3.e": Flavour("CALWF3", "WFC3", ("asn", "raw")),
    "cs0.e": Flavour("CALSTIS", "STIS", ("raw", "wav"), many_inputs=True),
}


@dataclass
class Options:
    inputs: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    nthreads: int = 1


def usage(program: str) -> str:
    if program == "cs0.e":
        return f"syntax:  {program} [--help] [-t] [-s] [-v] [-q] [-r] [--version] input [input ...]"
    return (
        f"syntax:  {program} [--help] [-t] [-s] [-v] [-q] [-r] [--version] "
        "[-1|--nthreads <N>] input"
    )


def _bad(program: str, message: str) -> Abort:
    return Abort(HSTCAL_ERROR, f"ERROR:  {message}\n{usage(program)}")


def parse_args(program: str, argv: list[str]) -> Options | int:
    """The options, or an exit status for --help/--version."""
    flavour = FLAVOURS[program]
    options = Options()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--help":
            print(usage(program))
            return 0
        if arg in ("--version", "-r"):
            print(f"{flavour.title} STAND-IN {STANDIN_VERSION}")
            return 0
        if arg == "--nthreads" or arg.startswith("--nthreads="):
            value = arg.partition("=")[2] if "=" in arg else (args.pop(0) if args else "")
            if not value.isdigit() or int(value) < 1:
                raise _bad(program, f"--nthreads needs a positive integer, not {value!r}")
            if program == "cs0.e":
                raise _bad(program, "unrecognized option --nthreads")
            options.nthreads = int(value)
        elif arg.startswith("--"):
            raise _bad(program, f"unrecognized option {arg}")
        elif arg.startswith("-") and len(arg) > 1:
            allowed = "tsvq1" if program != "cs0.e" else "tsvq"
            for letter in arg[1:]:
                if letter not in allowed:
                    raise _bad(program, f"unrecognized option -{letter}")
                options.flags.add(letter)
        else:
            options.inputs.append(arg)
    if not options.inputs:
        raise _bad(program, "no input file")
    if len(options.inputs) > 1 and not flavour.many_inputs:
        raise _bad(program, f"only one input file, got {len(options.inputs)}")
    for name in options.inputs:
        _, suffix = split_name(name)
        if suffix not in flavour.input_suffixes:
            wanted = " or ".join(f"_{s}.fits" for s in flavour.input_suffixes)
            raise _bad(program, f"input {name} is not a {wanted} file")
    return options


# ---------------------------------------------------------------------------


@dataclass
class Work:
    """What one run processes: exposures (rootname, raw path) and association products."""

    exposures: list[tuple[str, Path]]
    products: list[tuple[str, str]]  # (product name, member type)
    asn_root: str = ""


def plan(program: str, options: Options) -> Work:
    inputs = [Path(name) for name in options.inputs]
    for path in inputs:
        if not path.is_file():
            raise _bad(program, f"Input file {path} not found.")
    root, suffix = split_name(str(inputs[0]))
    if suffix == "asn":
        rows = read_asn(inputs[0])
        folder = inputs[0].parent
        exposures = []
        for name, kind, present in rows:
            if not kind.startswith("EXP-") or not present:
                continue
            raw = folder / f"{name}_raw.fits"
            if not raw.is_file():
                raise Abort(
                    HSTCAL_ERROR, f"ERROR:  Member {raw.name} of {inputs[0].name} not found."
                )
            exposures.append((name, raw))
        if not exposures:
            raise Abort(HSTCAL_ERROR, f"ERROR:  No present exposures in {inputs[0].name}.")
        products = [(name, kind) for name, kind, _ in rows if kind.startswith("PROD-")]
        return Work(exposures, products, asn_root=root)
    exposures = []
    roots_with_raw = {split_name(str(p))[0] for p in inputs if split_name(str(p))[1] == "raw"}
    for path in inputs:
        root, suffix = split_name(str(path))
        if suffix == "wav" and root in roots_with_raw:
            continue  # used as the wavecal of its raw
        exposures.append((root, path))
    return Work(exposures, [])


def run_hstcal(program: str, argv: list[str]) -> int:
    flavour = FLAVOURS[program]
    parsed = parse_args(program, argv)
    if isinstance(parsed, int):
        return parsed
    work = plan(program, parsed)
    out = Reporter(program)
    for root, _ in work.exposures:
        out.add_trailer(root)
    if work.asn_root:
        out.add_trailer(work.asn_root)
    out.line(f"CALBEG*** {flavour.title} -- Version {STANDIN_VERSION} (STAND-IN, not hstcal) ***")
    out.line(f"Begin    {hms_now()}")
    out.note(f"input    {' '.join(parsed.inputs)}")
    before_work(program, out)

    from astropy.io import fits

    made: dict[str, list[Path]] = {}
    for root, raw in work.exposures:
        with fits.open(raw) as hdul:
            header = hdul[0].header
            instrument = str(header.get("INSTRUME", "")).strip().upper()
            if instrument != flavour.instrument:
                out.line(
                    f"ERROR:    {raw.name}: INSTRUME is {instrument!r}, not {flavour.instrument}"
                )
                raise Abort(HSTCAL_ERROR)
            problems = open_references(header)
            if problems:
                for problem in problems:
                    out.line(f"ERROR:    Reference file not resolved: {problem}")
                out.line(f"ERROR:    {flavour.title} cannot calibrate {raw.name}")
                raise Abort(HSTCAL_ERROR)
            out.note(f"Processing {raw.name}")
            if want_products(program):
                made[root] = calibrate_exposure(program, hdul, root, out)
    if work.products and want_products(program):
        make_association_products(program, work, made, out)
    out.line(f"End      {hms_now()}")
    out.note(f"*** {flavour.title} complete ***")
    return final_status(program)


def _detector(header) -> str:
    return str(header.get("DETECTOR", "")).strip().upper()


def _flt_hdus(program: str, hdul, filename: str, scale: float = 1.0) -> list:
    from astropy.io import fits

    primary = fits.PrimaryHDU(header=hdul[0].header.copy())
    stamp(primary.header, program, filename)
    gain = float(hdul[0].header.get("CCDGAIN", 1.0) or 1.0)
    hdus = [primary]
    for extver, sci in enumerate(imsets(hdul), start=1):
        data, err, dq = calibrate_sci(sci.data, gain, scale)
        hdus += image_set(data, err, dq, sci.header, extver)
    return hdus


def calibrate_exposure(program: str, hdul, root: str, out: Reporter) -> list[Path]:
    header = hdul[0].header
    detector = _detector(header)
    written: list[Path] = []
    if program == "calwf3.e" and detector == "IR":
        written += _wfc3_ir(program, hdul, root)
    else:
        written.append(
            write_hdus(Path(f"{root}_flt.fits"), _flt_hdus(program, hdul, f"{root}_flt.fits"))
        )
        if (program, detector) in (("calacs.e", "WFC"), ("calwf3.e", "UVIS")):
            name = f"{root}_flc.fits"
            written.append(write_hdus(Path(name), _flt_hdus(program, hdul, name, scale=1.01)))
    if program == "cs0.e":
        written += _stis_products(program, hdul, root)
    for path in written:
        out.line(f"Writing  {path.name}")
    return written


def _wfc3_ir(program: str, hdul, root: str) -> list[Path]:
    """IR: ``_ima`` (every read, calibrated) and ``_flt`` (count rate of the ramp)."""
    import numpy as np
    from astropy.io import fits

    ima_name, flt_name = f"{root}_ima.fits", f"{root}_flt.fits"
    reads = imsets(hdul)
    gain = float(hdul[0].header.get("CCDGAIN", 2.5) or 2.5)
    primary = fits.PrimaryHDU(header=hdul[0].header.copy())
    stamp(primary.header, program, ima_name)
    hdus = [primary]
    zero = np.asarray(reads[-1].data, dtype=np.float32)
    for extver, sci in enumerate(reads, start=1):
        data = (np.asarray(sci.data, dtype=np.float32) - zero) * np.float32(gain)
        err = np.sqrt(np.abs(data) + np.float32(400.0)).astype(np.float32)
        hdus += image_set(data, err, np.zeros(data.shape, np.int16), sci.header, extver)
    write_hdus(Path(ima_name), hdus)
    exptime = float(hdul[0].header.get("EXPTIME", 1.0) or 1.0)
    rate = (np.asarray(reads[0].data, dtype=np.float32) - zero) * np.float32(gain / exptime)
    err = np.sqrt(np.abs(rate) + np.float32(0.01)).astype(np.float32)
    primary = fits.PrimaryHDU(header=hdul[0].header.copy())
    stamp(primary.header, program, flt_name)
    flt = [primary, *image_set(rate, err, np.zeros(rate.shape, np.int16), reads[0].header, 1)]
    flt[1].header["BUNIT"] = "ELECTRONS/S"
    write_hdus(Path(flt_name), flt)
    return [Path(ima_name), Path(flt_name)]


def _stis_products(program: str, hdul, root: str) -> list[Path]:
    """STIS spectroscopy: ``_x2d`` (rectified image) and ``_x1d`` (one spectral order)."""
    import numpy as np
    from astropy.io import fits

    header = hdul[0].header
    if str(header.get("OBSTYPE", "")).strip().upper() != "SPECTROSCOPIC":
        return []
    sci = imsets(hdul)[0]
    data, err, dq = calibrate_sci(sci.data, float(header.get("CCDGAIN", 1) or 1))
    x2d_name, x1d_name = f"{root}_x2d.fits", f"{root}_x1d.fits"
    primary = fits.PrimaryHDU(header=header.copy())
    stamp(primary.header, program, x2d_name)
    write_hdus(Path(x2d_name), [primary, *image_set(data, err, dq, sci.header, 1)])

    nelem = data.shape[1]
    cenwave = float(header.get("CENWAVE", 4300) or 4300)
    wavelength = np.linspace(cenwave - 1400.0, cenwave + 1400.0, nelem)
    counts = data.sum(axis=0)
    flux = (np.clip(counts, 0, None) * 1e-17).astype(np.float32)
    columns = [
        fits.Column(name="SPORDER", format="1I", array=np.array([1], np.int16)),
        fits.Column(name="NELEM", format="1I", array=np.array([nelem], np.int16)),
        fits.Column(
            name="WAVELENGTH", format=f"{nelem}D", unit="Angstroms", array=wavelength[None, :]
        ),
        fits.Column(name="GROSS", format=f"{nelem}E", unit="Counts/s", array=counts[None, :]),
        fits.Column(
            name="FLUX", format=f"{nelem}E", unit="erg/s/cm**2/Angstrom", array=flux[None, :]
        ),
        fits.Column(
            name="ERROR",
            format=f"{nelem}E",
            unit="erg/s/cm**2/Angstrom",
            array=(flux * 0.05)[None, :],
        ),
        fits.Column(name="DQ", format=f"{nelem}I", array=np.zeros((1, nelem), np.int16)),
    ]
    table = fits.BinTableHDU.from_columns(columns, name="SCI")
    table.header["ROOTNAME"] = root
    primary = fits.PrimaryHDU(header=header.copy())
    stamp(primary.header, program, x1d_name)
    write_hdus(Path(x1d_name), [primary, table])
    return [Path(x2d_name), Path(x1d_name)]


def make_association_products(
    program: str, work: Work, made: dict[str, list[Path]], out: Reporter
) -> None:
    """``<prod>_crj.fits`` (and ``_crc.fits``) for the CR-combined products."""
    import numpy as np
    from astropy.io import fits

    # WFC3/IR associations are only drizzled: no CR-combined product.
    infrared = any(path.name.endswith("_ima.fits") for paths in made.values() for path in paths)
    for name, kind in work.products:
        if kind == "PROD-DTH":
            continue  # drizzled products belong to runastrodriz
        for kind_suffix, source_suffix in (("crj", "flt"), ("crc", "flc")):
            sources = [
                path
                for paths in made.values()
                for path in paths
                if path.name.endswith(f"_{source_suffix}.fits")
            ]
            if not sources or len(sources) != len(made) or infrared:
                continue
            opened = [fits.open(path) for path in sources]
            try:
                first = opened[0]
                primary = fits.PrimaryHDU(header=first[0].header.copy())
                filename = f"{name}_{kind_suffix}.fits"
                stamp(primary.header, program, filename)
                primary.header["ROOTNAME"] = name
                hdus = [primary]
                for extver, sci in enumerate(imsets(first), start=1):
                    stack = np.mean([imsets(h)[extver - 1].data for h in opened], axis=0)
                    stack = stack.astype(np.float32)
                    err = np.sqrt(np.abs(stack) + np.float32(16.0)).astype(np.float32)
                    hdus += image_set(
                        stack, err, np.zeros(stack.shape, np.int16), sci.header, extver
                    )
                    hdus[-3].header["NCOMBINE"] = len(opened)
                write_hdus(Path(filename), hdus)
            finally:
                for handle in opened:
                    handle.close()
            out.line(f"Writing  {filename} (combined {len(sources)} exposures)")

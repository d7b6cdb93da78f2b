"""STAND-IN for tests, never shipped: code shared by the calibration-program stand-ins.

The real programs (hstcal's ``calacs.e``, ``calwf3.e``, ``cs0.e``; drizzlepac's
``runastrodriz``, ``runsinglehap``, ``runmultihap``) cannot be installed here or
are far too slow for unit tests. These stand-ins keep their command lines, exit
statuses, product names and trailer files, and write small valid FITS products
derived from their inputs. They calibrate nothing: every product says so in a
HISTORY line. Like the real programs, they open every ``<var>$<file>`` reference
file their input headers name (``BIASFILE = 'jref$x_bia.fits'``): ``<var>`` must
be set to a folder, ending in ``/``, that holds a readable ``<file>``.

Environment (read by every stand-in):

``CALDP_STANDIN_RECORD``           append one JSON line per run to this file
``CALDP_STANDIN_RECORD_VARS``      extra variable names (comma separated) to record
``CALDP_STANDIN_ONLY=<program>``   apply the fault settings below to that program only
``CALDP_STANDIN_SLEEP=<seconds>``  sleep before working
``CALDP_STANDIN_MEMORY=<MiB>``     hold that much resident memory while it sleeps and works
``CALDP_STANDIN_HANG=1``           sleep until killed
``CALDP_STANDIN_BADBYTES=1``       write bytes that are not UTF-8 to stdout, carry on
``CALDP_STANDIN_SIGNAL=<name>``    die by that signal (KILL, SEGV, TERM, ...)
``CALDP_STANDIN_MEMORYERROR=1``    Python traceback ending in MemoryError, exit 1
``CALDP_STANDIN_ENOMEM=1``         ``OSError: [Errno 12] Cannot allocate memory``, exit 1
``CALDP_STANDIN_FAIL=<N>``         write a partial trailer, exit N
``CALDP_STANDIN_NO_PRODUCTS=1``    succeed without writing products
``CALDP_STANDIN_EXIT=<N>``         do the work, then exit N
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

STANDIN_VERSION = "0.0.0-standin"
HSTCAL_ERROR = 2
PYTHON_ERROR = 1
REFERENCE_VARIABLES = ("jref", "iref", "oref", "lref", "nref", "uref")
STANDIN_HISTORY = "STAND-IN {program} for tests: not a real calibration"


class Abort(Exception):
    """Stop the program with ``status`` after ``message`` was reported."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------------------
# output


class Reporter:
    """Progress lines on stdout and stderr, and in the trailers named so far."""

    def __init__(self, program: str) -> None:
        self.program = program
        self.trailers: list[Path] = []

    def add_trailer(self, rootname: str) -> None:
        path = Path(f"{rootname.lower()}.tra")
        if path not in self.trailers:
            self.trailers.append(path)

    def line(self, text: str, *, trailer: bool = True) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        if trailer:
            for path in self.trailers:
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(text + "\n")

    def note(self, text: str) -> None:
        """A line on stderr (and stdout): what the program is doing now."""
        sys.stderr.write(f"{self.program}: {text}\n")
        sys.stderr.flush()
        self.line(text)


def python_traceback(program: str, frames: list[tuple[str, int, str, str]], error: str) -> None:
    """Print a Python-style traceback on stderr."""
    lines = ["Traceback (most recent call last):"]
    for filename, lineno, function, code in frames:
        lines.append(f'  File "{filename}", line {lineno}, in {function}')
        lines.append(f"    {code}")
    lines.append(error)
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


_DRIZZLEPAC_FRAMES = [
    ("/opt/conda/bin/{program}", 8, "<module>", "sys.exit(main())"),
    ("/opt/conda/lib/python3.11/site-packages/drizzlepac/{module}.py", 1044, "main", "{call}"),
]


def _frames(program: str) -> list[tuple[str, int, str, str]]:
    module = {"runsinglehap": "hapsequencer", "runmultihap": "hapmultisequencer"}.get(
        program, "runastrodriz"
    )
    call = "run_hap_processing(input_filename)" if "hap" in program else "process(infile)"
    return [
        (f.format(program=program, module=module), n, fn, c.format(call=call))
        for f, n, fn, c in _DRIZZLEPAC_FRAMES
    ]


# ---------------------------------------------------------------------------
# record and faults


def record_run(program: str, argv: list[str]) -> None:
    target = os.environ.get("CALDP_STANDIN_RECORD")
    if not target:
        return
    names = list(REFERENCE_VARIABLES)
    extra = os.environ.get("CALDP_STANDIN_RECORD_VARS", "")
    names += [name.strip() for name in extra.split(",") if name.strip()]
    entry = {
        "program": program,
        "argv": argv,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "env": {name: os.environ.get(name) for name in names},
    }
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def fault(program: str, name: str) -> str:
    """The value of ``CALDP_STANDIN_<name>`` if it applies to ``program``, else ""."""
    only = os.environ.get("CALDP_STANDIN_ONLY", "").strip()
    if only and only not in (program, program.removesuffix(".e")):
        return ""
    return os.environ.get(f"CALDP_STANDIN_{name}", "").strip()


def _int_setting(program: str, name: str) -> int | None:
    value = fault(program, name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise Abort(
            HSTCAL_ERROR, f"stand-in: CALDP_STANDIN_{name}={value!r} is not an integer"
        ) from None


def die_by_signal(name: str) -> None:
    signame = name.upper()
    if not signame.startswith("SIG"):
        signame = "SIG" + signame
    signum = getattr(signal, signame, None)
    if not isinstance(signum, int):
        raise Abort(HSTCAL_ERROR, f"stand-in: unknown signal {name!r}")
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files in tests
    except (ImportError, ValueError, OSError):
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    if signum != signal.SIGKILL and signum != signal.SIGSTOP:
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(5)  # a blocked or ignored signal: fall through to the caller
    raise Abort(HSTCAL_ERROR, f"stand-in: signal {signame} did not end the process")


HELD: list[bytearray] = []  # CALDP_STANDIN_MEMORY, kept until the process exits


def before_work(program: str, out: Reporter) -> None:
    """Apply the fault settings that act before the real work."""
    mib = _int_setting(program, "MEMORY")
    if mib:
        block = bytearray(mib * 2**20)
        block[::4096] = b"x" * len(block[::4096])  # touch every page: resident, not reserved
        HELD.append(block)
    seconds = fault(program, "SLEEP")
    if seconds:
        time.sleep(float(seconds))
    if fault(program, "HANG") == "1":
        out.note("stand-in: hanging until killed (CALDP_STANDIN_HANG=1)")
        while True:
            time.sleep(3600)
    if fault(program, "BADBYTES") == "1":
        sys.stdout.flush()
        sys.stdout.buffer.write(b"stand-in bad bytes: \xff\xfe\x80 end\n")
        sys.stdout.buffer.flush()
    name = fault(program, "SIGNAL")
    if name:
        out.line(f"stand-in: dying by signal {name}")
        die_by_signal(name)
    if fault(program, "MEMORYERROR") == "1":
        out.line("stand-in: running out of memory")
        frames = _frames(program) + [
            (
                "/opt/conda/lib/python3.11/site-packages/numpy/core/numeric.py",
                205,
                "ones",
                "a = empty(shape, dtype, order)",
            )
        ]
        python_traceback(
            program,
            frames,
            "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 7.63 GiB for an array"
            " with shape (32000, 32000) and data type float64\nMemoryError",
        )
        raise Abort(PYTHON_ERROR)
    if fault(program, "ENOMEM") == "1":
        out.line("stand-in: fork failing")
        python_traceback(
            program,
            _frames(program)
            + [
                (
                    "/opt/conda/lib/python3.11/subprocess.py",
                    1901,
                    "_execute_child",
                    "self.pid = _fork_exec(",
                )
            ],
            "OSError: [Errno 12] Cannot allocate memory",
        )
        raise Abort(PYTHON_ERROR)
    status = _int_setting(program, "FAIL")
    if status is not None:
        out.line(f"stand-in: failing on request with status {status} (partial trailer)")
        raise Abort(status)


def final_status(program: str) -> int:
    status = _int_setting(program, "EXIT")
    return 0 if status is None else status


def want_products(program: str) -> bool:
    return fault(program, "NO_PRODUCTS") != "1"


# ---------------------------------------------------------------------------
# reference files

_REFERENCE_RE = re.compile(r"^([a-z]+)\$(\S+)$", re.IGNORECASE)


def open_references(header: Any) -> list[str]:
    """Open every ``<var>$<file>`` reference that ``header`` names, as the real
    programs do: ``<var>`` must be set to a folder ending in ``/`` holding a
    readable ``<file>``.  Returns the problems (empty if none)."""
    problems: list[str] = []
    for card in header.cards:
        value = card.value
        if not isinstance(value, str):
            continue
        match = _REFERENCE_RE.match(value.strip())
        if not match:
            continue
        var, name = match.group(1), match.group(2)
        directory = os.environ.get(var)
        if directory is None:
            problems.append(f"{card.keyword}={value}: environment variable {var!r} is not set")
        elif not directory.endswith("/"):
            problems.append(f"{card.keyword}={value}: {var}={directory!r} does not end with '/'")
        elif not os.path.isdir(directory):
            problems.append(
                f"{card.keyword}={value}: {var}={directory!r} is not an existing directory"
            )
        else:
            try:
                with open(directory + name, "rb") as handle:
                    handle.read(2880)
            except OSError as exc:
                problems.append(
                    f"{card.keyword}={value}: cannot open {directory + name}: {exc.strerror}"
                )
    return problems


# ---------------------------------------------------------------------------
# FITS helpers

SUFFIX_RE = re.compile(r"^(?P<root>[a-z0-9]+?)_(?P<suffix>[a-z0-9_]+)\.fits$", re.IGNORECASE)


def split_name(path: str) -> tuple[str, str]:
    """``j8cb01a1q_raw.fits`` -> (``j8cb01a1q``, ``raw``)."""
    match = SUFFIX_RE.match(Path(path).name)
    if not match:
        return "", ""
    return match.group("root").lower(), match.group("suffix").lower()


def read_asn(path: Path) -> list[tuple[str, str, bool]]:
    from astropy.io import fits

    with fits.open(path) as hdul:
        data = hdul["ASN"].data if "ASN" in hdul else hdul[1].data
        rows = []
        for row in data:
            name = str(row["MEMNAME"]).strip().lower()
            kind = str(row["MEMTYPE"]).strip().upper()
            rows.append((name, kind, bool(row["MEMPRSNT"])))
    return rows


def stamp(header: Any, program: str, filename: str) -> None:
    header["FILENAME"] = filename
    header["CAL_VER"] = (STANDIN_VERSION, "STAND-IN calibration code version")
    for key in list(header.keys()):
        if key.endswith("CORR") and header[key] == "PERFORM":
            header[key] = "COMPLETE"
    header.add_history(STANDIN_HISTORY.format(program=program))


def write_hdus(path: Path, hdus: list[Any]) -> Path:
    from astropy.io import fits

    hdus[0].header["NEXTEND"] = len(hdus) - 1
    fits.HDUList(hdus).writeto(path, overwrite=True, output_verify="silentfix")
    return path


def _ext_header(header: Any) -> Any:
    clean = header.copy()
    for key in ("BZERO", "BSCALE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2"):
        clean.remove(key, ignore_missing=True, remove_all=True)
    for key in ("PCOUNT", "GCOUNT", "EXTNAME", "EXTVER"):
        clean.remove(key, ignore_missing=True)
    return clean


def imsets(hdul: Any) -> list[Any]:
    """The SCI extensions of an open FITS file, in order."""
    return [hdu for hdu in hdul[1:] if hdu.name == "SCI" and hdu.data is not None]


def calibrate_sci(raw: Any, gain: float, scale: float = 1.0) -> tuple[Any, Any, Any]:
    """A pretend calibration: bias-subtract, apply the gain; returns SCI, ERR, DQ."""
    import numpy as np

    data = np.asarray(raw, dtype=np.float32)
    bias = np.float32(np.percentile(data, 2.0))
    sci = ((data - bias) * np.float32(gain * scale)).astype(np.float32)
    err = np.sqrt(np.abs(sci) + np.float32(16.0)).astype(np.float32)
    dq = np.where(data >= 65000, 256, 0).astype(np.int16)
    return sci, err, dq


def image_set(sci: Any, err: Any, dq: Any, header: Any, extver: int) -> list[Any]:
    from astropy.io import fits

    sci_hdu = fits.ImageHDU(sci, header=_ext_header(header), name="SCI", ver=extver)
    sci_hdu.header["BUNIT"] = "ELECTRONS"
    err_hdu = fits.ImageHDU(err, name="ERR", ver=extver)
    dq_hdu = fits.ImageHDU(dq, name="DQ", ver=extver)
    for hdu in (err_hdu, dq_hdu):
        hdu.header["ROOTNAME"] = header.get("ROOTNAME", "")
    return [sci_hdu, err_hdu, dq_hdu]


def mosaic(arrays: list[Any]) -> Any:
    import numpy as np

    return np.vstack(list(reversed(arrays))) if len(arrays) > 1 else arrays[0]


def drizzled_file(path: Path, program: str, primary_header: Any, sci: Any, sci_header: Any) -> Path:
    """A drizzled product: PRIMARY, SCI (float32), WHT (float32), CTX (int32)."""
    import numpy as np
    from astropy.io import fits

    primary = fits.PrimaryHDU(header=primary_header.copy())
    primary.header.remove("NEXTEND", ignore_missing=True)
    stamp(primary.header, program, path.name)
    primary.header["ROOTNAME"] = (path.name.rsplit("_", 1)[0], "")
    header = _ext_header(sci_header) if sci_header is not None else fits.Header()
    sci = np.asarray(sci, dtype=np.float32)
    if "CRPIX2" in header:
        header["CRPIX2"] = sci.shape[0] / 2.0
    sci_hdu = fits.ImageHDU(sci, header=header, name="SCI", ver=1)
    sci_hdu.header["BUNIT"] = "ELECTRONS/S"
    wht = fits.ImageHDU(np.ones_like(sci, dtype=np.float32), name="WHT", ver=1)
    ctx = fits.ImageHDU(np.ones(sci.shape, dtype=np.int32), name="CTX", ver=1)
    return write_hdus(path, [primary, sci_hdu, wht, ctx])


def hms_now() -> str:
    return time.strftime("%d-%b-%Y %H:%M:%S UTC", time.gmtime())


# ---------------------------------------------------------------------------
# entry point


def main(program: str, argv: list[str]) -> int:
    """Run the stand-in ``program`` with ``argv``; returns the exit status."""
    record_run(program, argv)
    try:
        if program in ("calacs.e", "calwf3.e", "cs0.e"):
            from _hstcal import run_hstcal

            return run_hstcal(program, argv)
        if program == "runastrodriz":
            from _drizzlepac import run_astrodriz

            return run_astrodriz(program, argv)
        if program in ("runsinglehap", "runmultihap"):
            from _drizzlepac import run_hap

            return run_hap(program, argv)
    except Abort as stop:
        if stop.message:
            sys.stderr.write(stop.message + "\n")
            sys.stderr.flush()
        return stop.status
    sys.stderr.write(f"stand-in: unknown program {program!r}\n")
    return HSTCAL_ERROR

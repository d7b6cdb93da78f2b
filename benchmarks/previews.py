"""Time and memory of the preview step.

    python benchmarks/previews.py

1. Image previews (full JPEG + thumbnail) of a synthetic two-chip WFC-like file
   (2 x 2048 x 4096 float32 SCI and ERR, int16 DQ: 168 MB), made from one
   reading of the file, against the image step run twice as separate reads
   (full, then thumbnail).
2. Spectral previews (spec-plots, in this process) of the 9 real COS products
   in $CALDP_TESTDATA/cos/ldfd01010/calcos-3.3.4, one after the other: the
   first file (imports and first figure), the following ones (wall and CPU
   time: on a busy machine the CPU time is the steadier figure), and the peak
   resident set after the first file and after all 9.  Goals: <= 0.5 s per file
   after the first; peak RSS after 9 files within 10 % of the peak after 1.
   Files differ in how much they need: the peak of each file alone (each in its
   own fresh interpreter) is printed too, so that growth from one file to the
   next can be told from the heaviest file's own need.

Each measurement runs in a fresh interpreter.  Peak memory is the rise of the
process's peak resident set (VmHWM) over its size before the step, so it
includes the pages of the memory-mapped FITS file; the Python/numpy heap peak
(tracemalloc) is shown beside it.  Prints figures, ratios and the machine's
load average (other work skews the times), exits 0.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NCHIP, NY, NX = 2, 2048, 4096
COS_DIR = ("cos", "ldfd01010", "calcos-3.3.4")
MB = 1024 * 1024


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def make_two_chip_file(path: Path) -> int:
    """A WFC-like flc: two SCI/ERR/DQ chips with sky, stars, flagged pixels; returns data bytes."""
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(12345)
    hdus = [fits.PrimaryHDU(header=fits.Header({"INSTRUME": "ACS", "DETECTOR": "WFC"}))]
    data_bytes = 0
    for extver, ccdchip in ((1, 2), (2, 1)):
        sci = rng.normal(80.0, 6.0, (NY, NX)).astype(np.float32)
        ys, xs = rng.integers(5, NY - 5, 3000), rng.integers(5, NX - 5, 3000)
        sci[ys, xs] += rng.uniform(100, 30000, 3000).astype(np.float32)
        dq = np.zeros((NY, NX), dtype=np.int16)
        dq[:, 777] = 4
        dq[ys[:200], xs[:200]] = 256
        err = np.sqrt(np.abs(sci) + 25.0).astype(np.float32)
        head = fits.Header({"EXTNAME": "SCI", "EXTVER": extver, "CCDCHIP": ccdchip})
        hdus.append(fits.ImageHDU(sci, head))
        hdus.append(fits.ImageHDU(err, fits.Header({"EXTNAME": "ERR", "EXTVER": extver})))
        hdus.append(fits.ImageHDU(dq, fits.Header({"EXTNAME": "DQ", "EXTVER": extver})))
        data_bytes += sci.nbytes + err.nbytes + dq.nbytes
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return data_bytes


def _measure(queue, case: str, trace: bool, args: tuple) -> None:
    """Child process: import, reset the peak, run one case, report time and memory."""
    import PIL.Image

    from caldp.previews import images, spectra  # noqa: F401  (imports outside the timing)

    result: dict = {}
    if case == "spectra":
        t0 = time.perf_counter()
        import matplotlib

        matplotlib.use("Agg")
        import spec_plots.make_hst_spec_previews  # noqa: F401

        result["import_seconds"] = time.perf_counter() - t0
    rss_before = _status_kb("VmRSS")
    _reset_peak()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    if case == "single_read":
        path, out = args
        images.make_image_previews(Path(path), Path(out))
    elif case == "two_reads":
        path, out = args
        base = images.base_name(Path(path))
        full = images.render_file(Path(path))
        PIL.Image.fromarray(full.pixels).save(
            Path(out) / f"{base}.jpg", format="JPEG", quality=images.JPEG_QUALITY
        )
        del full
        again = images.render_file(Path(path))
        images.save_full_and_thumb(
            again.pixels, Path(out) / "scratch.jpg", Path(out) / f"{base}_thumb.jpg", 128
        )
    elif case == "spectra":
        files, out = args
        times = []
        cpu_times = []
        peaks = []
        for f in files:
            t0, c0 = time.perf_counter(), time.process_time()
            spectra.make_spectral_previews(Path(f), Path(out))
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
            peaks.append(_status_kb("VmHWM"))
        result["times"] = times
        result["cpu_times"] = cpu_times
        result["peak_kb_after_each_file"] = peaks
    result["seconds"] = time.perf_counter() - start
    if trace:
        result["heap_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    result["rss_peak_rise"] = (_status_kb("VmHWM") - rss_before) * 1024
    queue.put(result)


def run(case: str, *args, trace: bool = False) -> dict:
    """Run one case in a fresh interpreter; with ``trace`` also measure the heap peak
    (tracemalloc slows the run down, so times come from untraced runs)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(queue, case, trace, args))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def image_benchmark(tmp: Path) -> None:
    path = tmp / "jbench01q_flc.fits"
    data_bytes = make_two_chip_file(path)
    print(f"two-chip file: {NCHIP} x {NY} x {NX} float32 SCI and ERR + int16 DQ")
    print(f"  data {data_bytes / 1e6:.0f} MB, file {path.stat().st_size / 1e6:.0f} MB")
    run("single_read", str(path), str(tmp))  # warm the page cache
    single = run("single_read", str(path), str(tmp))
    double = run("two_reads", str(path), str(tmp))
    single["heap_peak"] = run("single_read", str(path), str(tmp), trace=True)["heap_peak"]
    double["heap_peak"] = run("two_reads", str(path), str(tmp), trace=True)["heap_peak"]
    for label, r in (("one read, both sizes", single), ("two reads (full, thumb)", double)):
        print(
            f"  {label:26s} {r['seconds']:6.3f} s   peak RSS rise {r['rss_peak_rise'] / MB:7.1f} MiB"
            f" ({r['rss_peak_rise'] / data_bytes:4.2f} x data)   heap peak"
            f" {r['heap_peak'] / MB:7.1f} MiB ({r['heap_peak'] / data_bytes:4.2f} x data)"
        )
    print(
        f"  ratio one read / two reads: time {single['seconds'] / double['seconds']:.2f},"
        f" peak RSS {single['rss_peak_rise'] / max(double['rss_peak_rise'], 1):.2f},"
        f" heap {single['heap_peak'] / max(double['heap_peak'], 1):.2f}"
    )
    ok_time = single["seconds"] < 1.0
    ok_mem = single["rss_peak_rise"] < 3 * data_bytes
    print(
        f"  target < 1 s: {'met' if ok_time else 'NOT met'};"
        f" target < 3 x data in memory: {'met' if ok_mem else 'NOT met'}"
    )


def spectral_benchmark(tmp: Path) -> None:
    testdata = os.environ.get("CALDP_TESTDATA")
    if not testdata:
        print("spectral previews: CALDP_TESTDATA is not set; skipped")
        return
    cos_dir = Path(testdata).joinpath(*COS_DIR)
    x1dsum = cos_dir / "ldfd01010_x1dsum.fits.gz"
    if not x1dsum.exists():
        print(f"spectral previews: {x1dsum} not found; skipped")
        return
    files = [x1dsum, *sorted(cos_dir.glob("ldfd01010_x1dsum?.fits.gz"))]
    files += sorted(cos_dir.glob("ldfd01v??_x1d.fits.gz"))
    out = tmp / "spectra"
    out.mkdir()
    r = run("spectra", [str(f) for f in files], str(out))
    times = r["times"]
    later = times[1:]
    print(f"spectral previews (spec-plots in-process), {len(files)} real COS files in turn:")
    print(f"  import of matplotlib and spec-plots: {r['import_seconds']:.2f} s")
    print(f"  first file ({x1dsum.name}, incl. first figure): {times[0]:.2f} s")
    median = statistics.median(later)
    print(
        f"  after the first: median {median:.2f} s, max {max(later):.2f} s per file"
        f" (goal <= 0.5 s: {'met' if median <= 0.5 else 'NOT met'});"
        f" CPU median {statistics.median(r['cpu_times'][1:]):.2f} s per file"
    )
    peaks = [kb / 1024 for kb in r["peak_kb_after_each_file"]]
    growth = peaks[-1] / peaks[0] - 1
    print("  peak RSS after each file: " + ", ".join(f"{v:.0f}" for v in peaks) + " MiB")
    print(
        f"  peak after {len(files)} files vs after 1: {growth:+.0%}"
        f" (goal within 10 %: {'met' if growth <= 0.10 else 'NOT met'})"
    )
    alone = [run("spectra", [str(f)], str(out))["peak_kb_after_each_file"][0] / 1024 for f in files]
    heaviest = max(range(len(files)), key=alone.__getitem__)
    print(
        "  peak RSS of each file alone: " + ", ".join(f"{v:.0f}" for v in alone) + " MiB;"
        f" after {len(files)} in one process vs the heaviest alone ({files[heaviest].name}):"
        f" {peaks[-1] / alone[heaviest] - 1:+.0%}"
    )


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> int:
    print(f"{os.cpu_count()} CPUs, load average {load()} (other work on the machine skews times)")
    with tempfile.TemporaryDirectory(prefix="caldp-previews-bench-") as tmp:
        image_benchmark(Path(tmp))
        spectral_benchmark(Path(tmp))
    print(f"load average {load()} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())

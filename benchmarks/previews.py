"""Time and memory of the preview step.

    python benchmarks/previews.py

1. Image previews (full JPEG + thumbnail) of a synthetic two-chip
   2 x 2048 x 4096 float32 file with DQ, made from one reading of the file,
   against the image step run twice as separate reads (full, then thumbnail).
2. Spectral previews (spec-plots, in this process) of the real COS products in
   $CALDP_TESTDATA/cos/ldfd01010/calcos-3.3.4: the first file (imports and
   first figure) and the following ones, and the memory growth over repeated
   calls (figures must be closed).

Each measurement runs in a fresh interpreter.  Peak memory is the rise of the
process's peak resident set (VmHWM) over its size before the step, so it
includes the pages of the memory-mapped FITS file; the Python/numpy heap peak
(tracemalloc) is shown beside it.  Prints figures and ratios, exits 0.
"""

from __future__ import annotations

import multiprocessing as mp
import os
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
        head = fits.Header({"EXTNAME": "SCI", "EXTVER": extver, "CCDCHIP": ccdchip})
        hdus.append(fits.ImageHDU(sci, head))
        hdus.append(fits.ImageHDU(dq, fits.Header({"EXTNAME": "DQ", "EXTVER": extver})))
        data_bytes += sci.nbytes + dq.nbytes
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return data_bytes


def _measure(queue, case: str, trace: bool, args: tuple) -> None:
    """Child process: import, reset the peak, run one case, report time and memory."""
    import astropy.visualization  # noqa: F401
    import PIL.Image  # noqa: F401

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
        images.save_jpeg(full.pixels, Path(out) / f"{base}.jpg")
        del full
        again = images.render_file(Path(path))
        images.save_full_and_thumb(
            again.pixels, Path(out) / "scratch.jpg", Path(out) / f"{base}_thumb.jpg", 128
        )
    elif case == "spectra":
        files, out, repeats = args
        times = []
        rss = []
        for _ in range(repeats):
            for f in files:
                t0 = time.perf_counter()
                spectra.make_spectral_previews(Path(f), Path(out))
                times.append(time.perf_counter() - t0)
            rss.append(_status_kb("VmRSS"))
        result["times"] = times
        result["rss_kb_after_each_round"] = rss
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
    print(f"two-chip file: {NCHIP} x {NY} x {NX} float32 SCI + int16 DQ")
    print(f"  data {data_bytes / MB:.1f} MiB, file {path.stat().st_size / MB:.1f} MiB")
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
    repeats = 3
    r = run("spectra", [str(f) for f in files], str(out), repeats)
    times = r["times"]
    later = times[1:]
    print(f"spectral previews (spec-plots in-process), {len(files)} real COS files x {repeats}:")
    print(f"  import of matplotlib and spec-plots: {r['import_seconds']:.2f} s")
    print(f"  first file ({x1dsum.name}, incl. first figure): {times[0]:.2f} s")
    median = sorted(later)[len(later) // 2]
    print(
        f"  after the first: median {median:.2f} s, mean {sum(later) / len(later):.2f} s,"
        f" max {max(later):.2f} s per file (target < 1 s on the median:"
        f" {'met' if median < 1.0 else 'NOT met'})"
    )
    x1dsum_times = times[len(files) :: len(files)]
    print(f"  {x1dsum.name} again: " + ", ".join(f"{t:.2f} s" for t in x1dsum_times))
    rss = [kb / 1024 for kb in r["rss_kb_after_each_round"]]
    print(
        "  RSS after each round of all files: "
        + ", ".join(f"{v:.0f} MiB" for v in rss)
        + f" (growth from round 1 to {repeats}: {rss[-1] - rss[0]:+.0f} MiB)"
    )
    print(f"  peak RSS rise over the whole run {r['rss_peak_rise'] / MB:.0f} MiB")


def main() -> int:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (other work on the machine skews times)")
    with tempfile.TemporaryDirectory(prefix="caldp-previews-bench-") as tmp:
        image_benchmark(Path(tmp))
        spectral_benchmark(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput, disk and memory of the S3 delivery.

    python benchmarks/s3_delivery.py [--mb 500] [--no-verify]

Starts its own moto server on 127.0.0.1, makes a synthetic product set of about
500 MB (FITS files with float32 SCI and ERR images of sky noise and stars and a
mostly-empty int16 DQ, so they compress like real calibrated images), then
delivers it two ways to the same server:

* baseline: tar + gzip level 9 into a local file, then one single-stream
  ``put_object`` of that file (what a simple implementation does);
* caldp: ``S3Output.deliver`` (tar streamed through parallel gzip at a fast
  level into parallel multipart parts; nothing written locally).

Each way is run 3 times (``--repeats``), alternating; the median and the spread
(lowest-highest) are printed.  For each: MB/s of product data, peak extra disk
(bytes written under the benchmark's scratch and temporary folders, sampled)
and peak extra memory (rise of this process's resident set, sampled), and the
tarball size.  The caldp tarball is then read back and checked (gzip CRC,
member sizes) unless ``--no-verify``.  Goals: caldp >= 3x the baseline's
throughput and >= 56 MB/s.  Prints the figures, the ratio and the machine's
load average (other work skews the times); exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MB = 1e6
GOAL_RATIO = 3.0
GOAL_MBPS = 56.0
BUCKET = "caldp-bench"
DATASET = "j8bt05njq"


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(scratch: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    tmp = scratch / "moto-tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    server = shutil.which("moto_server")
    argv = [server] if server else [sys.executable, "-m", "moto.server"]
    log = open(scratch / "moto.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(  # noqa: S603
        [*argv, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=2):
                return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.2)


def make_products(folder: Path, total_mb: float) -> list[Path]:
    """FITS files like calibrated 2k x 2k images: SCI, ERR (float32), DQ (int16)."""
    import numpy as np
    from astropy.io import fits

    folder.mkdir(parents=True)
    rng = np.random.default_rng(2024)
    ny = nx = 2048
    yy, xx = np.mgrid[0:ny, 0:nx]
    paths: list[Path] = []
    size = 0.0
    index = 0
    while size < total_mb * MB:
        sky = 120.0 + 0.002 * xx + rng.normal(0.0, 8.0, size=(ny, nx))
        for _ in range(40):  # a few stars
            y0, x0 = rng.integers(0, ny), rng.integers(0, nx)
            flux = rng.uniform(500, 20000)
            r2 = (yy[max(0, y0 - 8) : y0 + 8, max(0, x0 - 8) : x0 + 8] - y0) ** 2 + (
                xx[max(0, y0 - 8) : y0 + 8, max(0, x0 - 8) : x0 + 8] - x0
            ) ** 2
            sky[max(0, y0 - 8) : y0 + 8, max(0, x0 - 8) : x0 + 8] += flux * np.exp(-r2 / 4.0)
        sci = sky.astype(np.float32)
        err = np.sqrt(np.abs(sci) + 25.0).astype(np.float32)
        dq = np.zeros((ny, nx), dtype=np.int16)
        dq[rng.random((ny, nx)) < 0.002] = 16
        dq[:, 1000:1002] = 4  # a bad column
        primary = fits.PrimaryHDU()
        primary.header["ROOTNAME"] = f"j8bt05{index:02d}q"
        primary.header["INSTRUME"] = "ACS"
        hdus = fits.HDUList(
            [
                primary,
                fits.ImageHDU(sci, name="SCI"),
                fits.ImageHDU(err, name="ERR"),
                fits.ImageHDU(dq, name="DQ"),
            ]
        )
        path = folder / f"j8bt05{index:02d}q_flt.fits"
        hdus.writeto(path)
        paths.append(path)
        size += path.stat().st_size
        index += 1
    return paths


class Sampler:
    """Samples this process's RSS and the bytes under some folders, every 20 ms."""

    def __init__(self, folders: list[Path]):
        import psutil

        self._proc = psutil.Process()
        self._folders = folders
        self._stop = threading.Event()
        self.rss0 = self._proc.memory_info().rss
        self.peak_rss = self.rss0
        self.peak_disk = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _disk(self) -> int:
        total = 0
        for folder in self._folders:
            for root, _dirs, files in os.walk(folder):
                for name in files:
                    try:
                        total += os.stat(os.path.join(root, name)).st_size
                    except OSError:
                        pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self._proc.memory_info().rss)
            self.peak_disk = max(self.peak_disk, self._disk())
            self._stop.wait(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def baseline(client, products: list[Path], out: Path) -> tuple[float, int]:
    """tar + gzip -9 to a local file, then a single-stream put_object."""
    tarball = out / f"{DATASET}.tar.gz"
    started = time.perf_counter()
    with tarfile.open(tarball, "w:gz", compresslevel=9) as tar:
        for path in products:
            tar.add(path, arcname=f"{DATASET}/{path.name}")
    with open(tarball, "rb") as body:
        client.put_object(Bucket=BUCKET, Key=f"baseline/{DATASET}.tar.gz", Body=body)
    seconds = time.perf_counter() - started
    size = tarball.stat().st_size
    tarball.unlink()
    return seconds, size


def caldp_delivery(products: list[Path]) -> tuple[float, int, str]:
    from caldp.datasets import parse
    from caldp.settings import Settings
    from caldp.storage import DeliveryPlan, Uri
    from caldp.storage.s3 import S3Output

    output = S3Output(Uri("s3", f"{BUCKET}/outputs/{DATASET}"), Settings.read())
    started = time.perf_counter()
    delivered = output.deliver(DeliveryPlan(dataset=parse(DATASET), products=products))
    seconds = time.perf_counter() - started
    key = delivered.message_lines[0].split(f"s3://{BUCKET}/", 1)[1]
    size = output.client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    return seconds, size, key


def verify(client, key: str, products: list[Path]) -> None:
    """Stream the delivered tarball back: gzip CRC/length and every member's size."""
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
    with tarfile.open(fileobj=body, mode="r|gz") as tar:
        sizes = {m.name: m.size for m in tar}
    expected = {f"{DATASET}/{p.name}": p.stat().st_size for p in products}
    if sizes != expected:
        raise SystemExit(f"delivered tarball members differ: {sorted(sizes)} != {sorted(expected)}")
    # tarfile's stream reader does not check the gzip trailer: check it with zlib.
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for chunk in body.iter_chunks(8 * 2**20):
        d.decompress(chunk, 0)
    if not d.eof or d.unused_data:
        raise SystemExit("delivered tarball is not one complete gzip stream")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=500.0, help="product set size (MB)")
    parser.add_argument("--no-verify", action="store_true", help="skip reading the tarball back")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way")
    args = parser.parse_args(argv)

    import boto3

    with tempfile.TemporaryDirectory(prefix="caldp-bench-") as scratch_name:
        scratch = Path(scratch_name)
        out = scratch / "out"
        tmp = scratch / "tmp"
        out.mkdir()
        tmp.mkdir()
        os.environ["TMPDIR"] = str(tmp)
        tempfile.tempdir = str(tmp)
        proc, url = start_moto(scratch)
        try:
            os.environ.update(
                AWS_ACCESS_KEY_ID="bench-access-key",
                AWS_SECRET_ACCESS_KEY="bench-secret-key",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ENDPOINT_URL=url,
            )
            client = boto3.client("s3")
            client.create_bucket(Bucket=BUCKET)
            t0 = time.perf_counter()
            products = make_products(scratch / "products", args.mb)
            data_mb = sum(p.stat().st_size for p in products) / MB
            print(
                f"products: {len(products)} FITS files, {data_mb:.0f} MB "
                f"(made in {time.perf_counter() - t0:.1f} s); moto at {url}; "
                f"{os.cpu_count()} CPUs, load average {load()}"
            )

            runs: dict[str, list[tuple[float, int, float, float]]] = {"base": [], "caldp": []}
            for _ in range(args.repeats):
                with Sampler([out, tmp]) as sample:
                    seconds, size = baseline(client, products, out)
                runs["base"].append(
                    (seconds, size, sample.peak_disk, sample.peak_rss - sample.rss0)
                )
                client.delete_object(Bucket=BUCKET, Key=f"baseline/{DATASET}.tar.gz")
                with Sampler([out, tmp, scratch / "products"]) as sample:
                    before = sample._disk()
                    seconds, size, key = caldp_delivery(products)
                disk = max(0, sample.peak_disk - before)
                runs["caldp"].append((seconds, size, disk, sample.peak_rss - sample.rss0))

            names = {
                "base": "baseline: tar+gzip -9 file, put_object",
                "caldp": "caldp S3Output.deliver",
            }
            print(
                f"{'method (median of ' + str(args.repeats) + ')':<40} {'MB/s':>7} "
                f"{'MB/s range':>13} {'tarball MB':>11} {'extra disk MB':>14} {'extra RSS MB':>13}"
            )
            rates = {}
            for which, rows in runs.items():
                rates[which] = [data_mb / r[0] for r in rows]
                low, high = min(rates[which]), max(rates[which])
                print(
                    f"{names[which]:<40} {statistics.median(rates[which]):>7.1f} "
                    f"{low:>6.1f}-{high:<6.1f} "
                    f"{statistics.median(r[1] for r in rows) / MB:>11.1f} "
                    f"{max(r[2] for r in rows) / MB:>14.1f} "
                    f"{max(r[3] for r in rows) / MB:>13.1f}"
                )
            ratios = [c / b for c, b in zip(rates["caldp"], rates["base"], strict=True)]
            ratio = statistics.median(ratios)
            ours = statistics.median(rates["caldp"])
            print(
                f"throughput ratio caldp/baseline: median {ratio:.2f}x "
                f"(runs {', '.join(f'{r:.2f}' for r in ratios)}; goal >= {GOAL_RATIO:g}x: "
                f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}); caldp {ours:.1f} MB/s "
                f"(goal >= {GOAL_MBPS:g} MB/s: {'met' if ours >= GOAL_MBPS else 'NOT met'})"
            )
            print(f"load average {load()} after")
            if not args.no_verify:
                verify(client, key, products)
                print("delivered tarball read back: gzip stream complete, members and sizes match")
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

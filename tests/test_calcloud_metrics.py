"""The two metrics files as CALCLOUD's model ingest reads them: it adds them up.

CALCLOUD takes line index 4 (wall clock), line index 9 (max RSS, kB) and the
last line (exit status) of ``process_metrics.txt`` and ``preview_metrics.txt``
and sums the two files.  Here ``caldp-process`` runs as its own process, S3 in
and out, on an ACS association whose programs hold a known amount of memory,
while this test watches the process tree from outside.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tests.support import synthetic
from tests.support.pipeline_helpers import make_tarball
from tests.support.s3_fixtures import s3_client, use_fast_retries

pytestmark = pytest.mark.s3

BUCKET = "caldp-metrics-test"
ASN = "j8cb01010"
PROGRAM_MIB = 300  # what each stand-in program holds while it runs


WALL_CLOCK_SLACK = 0.2  # seconds, on an idle machine


def wall_clock_slack() -> float:
    """How far apart the metrics' wall clocks and one seen from outside may be: 0.2 s
    on an idle machine, stretched as much as a busy one stretches everything (the
    interpreter's start and exit, which the outside clock also sees)."""
    busy = os.getloadavg()[0] / (os.cpu_count() or 1)
    return WALL_CLOCK_SLACK * max(1.0, busy)


def calcloud_figures(text: str) -> tuple[float, int, str]:
    """Wall seconds, max RSS kB and exit status by CALCLOUD's rule (lines 4, 9, last)."""
    lines = text.splitlines()
    status = lines[-1].split(":")[-1].strip()
    clock = lines[4].strip().replace("Elapsed (wall clock) time (h:mm:ss or m:ss): ", "")
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(clock.split(":"))))
    kb = int(lines[9].strip().replace("Maximum resident set size (kbytes): ", ""))
    return seconds, kb, status


def command_of(text: str) -> list[str]:
    first = text.splitlines()[0].strip()
    assert first.startswith('Command being timed: "') and first.endswith('"'), first
    return shlex.split(first[len('Command being timed: "') : -1])


class TreeWatcher:
    """The highest total resident memory of a process and its children, sampled
    from ``/proc`` (cheaply, so as not to slow the run down)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _pids(self) -> list[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [self.pid, *map(int, children)]

    @staticmethod
    def _rss_kb(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                pids = self._pids()
            except OSError:
                return
            self.peak_kb = max(self.peak_kb, sum(self._rss_kb(pid) for pid in pids))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


def test_calcloud_sums_give_the_runs_wall_clock_and_peak(pipeline_env, aws_env, monkeypatch):
    use_fast_retries(monkeypatch)
    s3 = s3_client(aws_env)
    s3.create_bucket(Bucket=BUCKET)
    src = pipeline_env / "src"
    files = synthetic.make_acs_association(src, ASN, members=4)
    tarball = make_tarball(pipeline_env, f"{ASN}.tar.gz", files)
    s3.put_object(Bucket=BUCKET, Key=f"inputs/{ASN}.tar.gz", Body=tarball.read_bytes())
    env = dict(os.environ, CALDP_STANDIN_MEMORY=str(PROGRAM_MIB), CALDP_STANDIN_SLEEP="1")
    argv = [
        shutil.which("caldp-process", path=env["PATH"]) or "caldp-process",
        ASN,
        f"s3://{BUCKET}/inputs",
        f"s3://{BUCKET}/outputs/{ASN}",
        "caldp-config-local",
    ]

    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    watcher = TreeWatcher(proc.pid)
    _, stderr = proc.communicate(timeout=240)
    wall = time.monotonic() - started
    peak_kb = watcher.stop()
    assert proc.returncode == 0, stderr.decode()[-3000:]

    texts = {
        name: s3.get_object(Bucket=BUCKET, Key=f"outputs/{ASN}/{name}")["Body"].read().decode()
        for name in ("process_metrics.txt", "preview_metrics.txt")
    }
    figures = {name: calcloud_figures(text) for name, text in texts.items()}
    assert [status for _, _, status in figures.values()] == ["0", "0"]
    wall_sum = sum(seconds for seconds, _, _ in figures.values())
    kb_sum = sum(kb for _, kb, _ in figures.values())
    assert figures["preview_metrics.txt"][0] > 0  # the previews have their own share
    assert abs(wall_sum - wall) <= wall_clock_slack(), (figures, wall)
    # The programs' memory counts once, as in a real peak, and caldp's own beside it.
    assert kb_sum >= peak_kb > PROGRAM_MIB * 1024, (figures, peak_kb)
    assert kb_sum <= 1.1 * peak_kb, (figures, peak_kb)

    # Each file names a command that exists: the process command line as given, and a
    # caldp-previews command that makes the same previews from the delivered products.
    assert command_of(texts["process_metrics.txt"]) == ["caldp-process", *argv[1:]]
    assert shutil.which("caldp-process", path=env["PATH"])
    previews_argv = command_of(texts["preview_metrics.txt"])
    assert previews_argv[:3] == ["caldp-previews", "-o", "previews"] and previews_argv[3:]
    tarball = s3.get_object(Bucket=BUCKET, Key=f"outputs/{ASN}/{ASN}.tar.gz")["Body"].read()
    unpacked = pipeline_env / "unpacked"
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        # (extraction filters came with Python 3.11.4; the image's may be older)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(unpacked, **safe)
    products = unpacked / ASN
    delivered_previews = sorted(p.name for p in (products / "previews").iterdir())
    shutil.rmtree(products / "previews")
    rerun = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "caldp.previews.cli", *previews_argv[1:]],
        cwd=products,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in (products / "previews").iterdir()) == delivered_previews
    assert shutil.which(previews_argv[0], path=env["PATH"])

"""Resource figures of a run (CONTRACT section 7).

``process_metrics.txt`` and ``preview_metrics.txt`` use the GNU ``time
--verbose`` layout that CALCLOUD's parser reads by line index; max RSS counts
the calibration programs (children).  ``disk_metrics.txt`` gives the peak space
the dataset's working folder took, in ``df -BG`` layout (the file system holding
it, its size and what was free at that moment).  ``metrics.json`` has per-step
durations.  Measured with the standard library and psutil, no ``/usr/bin/time``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

GIB = 2**30


@dataclass(frozen=True)
class Usage:
    """A snapshot of resource use: this process plus its waited-for children."""

    wall: float
    user: float
    system: float
    max_rss_kb: int
    minor_faults: int
    major_faults: int
    voluntary: int
    involuntary: int
    fs_in: int
    fs_out: int
    signals: int

    @classmethod
    def now(cls) -> Usage:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            wall=time.monotonic(),
            user=me.ru_utime + kids.ru_utime,
            system=me.ru_stime + kids.ru_stime,
            max_rss_kb=max(me.ru_maxrss, kids.ru_maxrss),
            minor_faults=me.ru_minflt + kids.ru_minflt,
            major_faults=me.ru_majflt + kids.ru_majflt,
            voluntary=me.ru_nvcsw + kids.ru_nvcsw,
            involuntary=me.ru_nivcsw + kids.ru_nivcsw,
            fs_in=me.ru_inblock + kids.ru_inblock,
            fs_out=me.ru_oublock + kids.ru_oublock,
            signals=me.ru_nsignals + kids.ru_nsignals,
        )


def format_elapsed(seconds: float) -> str:
    """GNU time's ``h:mm:ss`` (an hour or more) or ``m:ss.cc``."""
    if seconds >= 3600:
        h, rest = divmod(int(seconds), 3600)
        m, s = divmod(rest, 60)
        return f"{h}:{m:02d}:{s:02d}"
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:05.2f}"


def gnu_time_report(command: str, start: Usage, end: Usage, exit_status: int) -> str:
    """The 23 lines of ``time --verbose`` for the interval ``start``..``end``."""
    wall = max(end.wall - start.wall, 0.0)
    user = max(end.user - start.user, 0.0)
    system = max(end.system - start.system, 0.0)
    cpu = int(round(100 * (user + system) / wall)) if wall > 0 else 0
    command = command.replace('"', "'")
    lines = [
        ("Command being timed", f'"{command}"'),
        ("User time (seconds)", f"{user:.2f}"),
        ("System time (seconds)", f"{system:.2f}"),
        ("Percent of CPU this job got", f"{cpu}%"),
        ("Elapsed (wall clock) time (h:mm:ss or m:ss)", format_elapsed(wall)),
        ("Average shared text size (kbytes)", "0"),
        ("Average unshared data size (kbytes)", "0"),
        ("Average stack size (kbytes)", "0"),
        ("Average total size (kbytes)", "0"),
        ("Maximum resident set size (kbytes)", str(end.max_rss_kb)),
        ("Average resident set size (kbytes)", "0"),
        ("Major (requiring I/O) page faults", str(end.major_faults - start.major_faults)),
        ("Minor (reclaiming a frame) page faults", str(end.minor_faults - start.minor_faults)),
        ("Voluntary context switches", str(end.voluntary - start.voluntary)),
        ("Involuntary context switches", str(end.involuntary - start.involuntary)),
        ("Swaps", "0"),
        ("File system inputs", str(end.fs_in - start.fs_in)),
        ("File system outputs", str(end.fs_out - start.fs_out)),
        ("Socket messages sent", "0"),
        ("Socket messages received", "0"),
        ("Signals delivered", str(end.signals - start.signals)),
        ("Page size (bytes)", str(os.sysconf("SC_PAGE_SIZE"))),
        ("Exit status", str(int(exit_status))),
    ]
    return "".join(f"\t{key}: {value}\n" for key, value in lines)


def _mount_of(path: Path) -> tuple[str, str]:
    """(device, mount point) of the file system holding ``path``."""
    import psutil

    real = os.path.realpath(path)
    best = ("-", "/")
    for part in psutil.disk_partitions(all=True):
        mp = part.mountpoint
        if (real == mp or real.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best[1]):
            best = (part.device or "-", mp)
    return best


def tree_bytes(path: Path) -> int:
    """Disk space taken by the files under ``path`` (their allocated blocks, as ``du``)."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                total += tree_bytes(Path(entry.path))
            else:
                total += entry.stat(follow_symlinks=False).st_blocks * 512
        except OSError:  # removed while counting
            continue
    return total


class DiskMonitor:
    """Samples the space the working folder takes in a background thread; keeps the peak
    (with the file system's size and free space at that moment)."""

    def __init__(self, path: Path, interval: float = 1.0):
        self.path = path
        self.interval = interval
        self.peak_used = 0
        self.total = 0
        self.free_at_peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        used = tree_bytes(self.path)
        try:
            usage = shutil.disk_usage(self.path)
        except OSError:
            return
        if used >= self.peak_used:
            self.peak_used, self.total, self.free_at_peak = used, usage.total, usage.free

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> DiskMonitor:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="caldp-disk-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.sample()

    def report(self) -> str:
        device, mount = _mount_of(self.path)

        def g(n: int) -> str:
            return f"{-(-n // GIB)}G"

        pct = f"{-(-100 * self.peak_used // max(self.total, 1))}%"
        header = "Filesystem 1G-blocks Used Available Use% Mounted on"
        row = " ".join([device, g(self.total), g(self.peak_used), g(self.free_at_peak), pct, mount])
        return header + "\n" + row + "\n"


@dataclass
class StepTimes:
    steps: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.steps[name] = self.steps.get(name, 0.0) + seconds


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_run_metrics(
    logs_dir: Path,
    command: str,
    dataset: str,
    code: int,
    start: Usage,
    disk: DiskMonitor,
    times: StepTimes,
) -> None:
    """``process_metrics.txt``, ``disk_metrics.txt`` and ``metrics.json`` of a run."""
    from caldp import __version__
    from caldp.exit_codes import ExitCode

    end = Usage.now()
    status = ExitCode(code)
    logs_dir.mkdir(parents=True, exist_ok=True)
    (logs_dir / "process_metrics.txt").write_text(gnu_time_report(command, start, end, status))
    (logs_dir / "disk_metrics.txt").write_text(disk.report())
    write_json(
        logs_dir / "metrics.json",
        {
            "dataset": dataset,
            "caldp_version": __version__,
            "exit_code": int(status),
            "exit_name": status.name,
            "wall_seconds": round(end.wall - start.wall, 3),
            "max_rss_kb": end.max_rss_kb,
            "disk_peak_used_bytes": disk.peak_used,
            "steps": {k: round(v, 3) for k, v in times.steps.items()},
        },
    )

"""Resource figures of a run (docs/interface.rst, Metrics).

``process_metrics.txt`` and ``preview_metrics.txt`` use the GNU ``time
--verbose`` layout that CALCLOUD's parser reads by line index.  CALCLOUD adds
the two files together, so together they describe the run once:

* wall clock: ``preview_metrics`` is the previews step, ``process_metrics`` the
  rest of the run from the process's start (interpreter start-up included)
  to the delivery of the logs;
* max RSS: the run's peak is caldp's own peak or, while a calibration program
  runs, the program's peak plus caldp's size (:class:`PeakMemory`);
  ``preview_metrics`` has how far the previews raised that peak,
  ``process_metrics`` the rest.

``disk_metrics.txt`` gives the peak space the dataset's working folder took, in
``df -BG`` layout (the file system holding it, its size and what was free at
that moment).  ``metrics.json`` has per-step durations.  Measured with the
standard library and psutil, no ``/usr/bin/time``.
"""

from __future__ import annotations

import dataclasses
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

    @classmethod
    def at_process_start(cls) -> Usage:
        """The zero of this process: when it started, before anything was used."""
        return cls(process_start(), 0.0, 0.0, 0, 0, 0, 0, 0, 0, 0, 0)

    def minus(self, other: Usage, max_rss_kb: int) -> Usage:
        """Field by field ``self - other`` (what was used from snapshot ``other`` to this
        one, or a total less a part of it), with ``max_rss_kb`` as its max RSS."""
        counters = {
            f.name: max(getattr(self, f.name) - getattr(other, f.name), 0)
            for f in dataclasses.fields(self)
        }
        return Usage(**{**counters, "max_rss_kb": max_rss_kb})


def process_start() -> float:
    """``time.monotonic()`` at the moment this process started (from ``/proc``;
    now, where ``/proc`` cannot tell)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rpartition(")")[2].split()[19])  # field 22, starttime
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic()
    return time.monotonic() - max(age, 0.0)


RSS_COUNTER_SLACK_KB = 1024  # the kernel's RSS counters of two processes may each lag a little


class PeakMemory:
    """The run's peak resident memory: caldp's own, or while a calibration program
    ran, the program's peak plus caldp's size as the program ended (caldp only waits
    then, so its size does not shrink; its earlier peaks are not added)."""

    def __init__(self) -> None:
        self.with_programs_kb = 0

    def program_done(self) -> None:
        """Call after each program exits (its peak is then in RUSAGE_CHILDREN)."""
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        self.with_programs_kb = max(
            self.with_programs_kb, resident_kb() + kids + RSS_COUNTER_SLACK_KB
        )

    def peak_kb(self) -> int:
        return max(own_peak_kb(), self.with_programs_kb)


def own_peak_kb() -> int:
    """This process's own peak resident memory, in kB: ``VmHWM`` in ``/proc/self/status``.
    Linux's ``ru_maxrss`` of a process also counts what the process that started it
    held at that moment (a large parent would look like caldp's own peak); it is the
    answer only where ``/proc`` cannot tell."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def resident_kb() -> int:
    """This process's resident size now (its peak so far where ``/proc`` cannot tell)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def format_elapsed(seconds: float) -> str:
    """GNU time's ``h:mm:ss`` (an hour or more) or ``m:ss.cc``."""
    if seconds >= 3600:
        h, rest = divmod(int(seconds), 3600)
        m, s = divmod(rest, 60)
        return f"{h}:{m:02d}:{s:02d}"
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:05.2f}"


def gnu_time_report(command: str, used: Usage, exit_status: int) -> str:
    """The 23 lines of ``time --verbose`` for what ``used`` (from :meth:`Usage.minus`) says."""
    wall, user, system = used.wall, used.user, used.system
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
        ("Maximum resident set size (kbytes)", str(used.max_rss_kb)),
        ("Average resident set size (kbytes)", "0"),
        ("Major (requiring I/O) page faults", str(used.major_faults)),
        ("Minor (reclaiming a frame) page faults", str(used.minor_faults)),
        ("Voluntary context switches", str(used.voluntary)),
        ("Involuntary context switches", str(used.involuntary)),
        ("Swaps", "0"),
        ("File system inputs", str(used.fs_in)),
        ("File system outputs", str(used.fs_out)),
        ("Socket messages sent", "0"),
        ("Socket messages received", "0"),
        ("Signals delivered", str(used.signals)),
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
    *,
    start: Usage,
    peak: PeakMemory,
    previews: Usage | None,
    disk: DiskMonitor,
    times: StepTimes,
) -> None:
    """``process_metrics.txt`` (the run from ``start`` until now, less its previews, which
    ``preview_metrics.txt`` has), ``disk_metrics.txt`` and ``metrics.json`` of a run."""
    from caldp import __version__
    from caldp.exit_codes import ExitCode

    status = ExitCode(code)
    disk_report = disk.report()
    whole = Usage.now().minus(start, peak.peak_kb())
    own = (
        whole if previews is None else whole.minus(previews, whole.max_rss_kb - previews.max_rss_kb)
    )
    logs_dir.mkdir(parents=True, exist_ok=True)
    (logs_dir / "process_metrics.txt").write_text(gnu_time_report(command, own, status))
    (logs_dir / "disk_metrics.txt").write_text(disk_report)
    write_json(
        logs_dir / "metrics.json",
        {
            "dataset": dataset,
            "caldp_version": __version__,
            "exit_code": int(status),
            "exit_name": status.name,
            "wall_seconds": round(whole.wall, 3),
            "max_rss_kb": whole.max_rss_kb,
            "disk_peak_used_bytes": disk.peak_used,
            "steps": {k: round(v, 3) for k, v in times.steps.items()},
        },
    )

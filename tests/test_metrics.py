import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from caldp import metrics


def test_own_peak_is_not_the_parents_memory():
    """A process started by a large one reports its own peak, not its parent's."""
    held = b"\1" * (256 * 2**20)  # written, so resident
    code = "from caldp import metrics; print(metrics.PeakMemory().peak_kb())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    del held
    assert 0 < int(out.stdout) < 128 * 1024, out.stdout


def test_gnu_time_layout_read_by_line_index():
    start = metrics.Usage.now()
    # a child that touches ~150 MB: max RSS must include children
    subprocess.run(
        [sys.executable, "-c", "b = bytearray(150 * 2**20); b[::4096] = b'x' * len(b[::4096])"],
        check=True,
    )
    end = metrics.Usage.now()
    used = end.minus(start, end.max_rss_kb)
    text = metrics.gnu_time_report('caldp-process "x" file:. file:.', used, 23)
    lines = text.splitlines()
    assert len(lines) == 23
    assert all(line.startswith("\t") and ": " in line for line in lines)
    assert lines[0].startswith("\tCommand being timed: \"caldp-process 'x'")
    assert lines[4].startswith("\tElapsed (wall clock) time (h:mm:ss or m:ss): ")
    assert re.fullmatch(r"\d+:\d\d\.\d\d", lines[4].split(": ")[1])
    assert lines[9].startswith("\tMaximum resident set size (kbytes): ")
    assert int(lines[9].split(": ")[1]) > 150 * 1024
    assert lines[-1] == "\tExit status: 23"


def test_elapsed_format():
    assert metrics.format_elapsed(13.814) == "0:13.81"
    assert metrics.format_elapsed(125.5) == "2:05.50"
    assert metrics.format_elapsed(3725) == "1:02:05"


def test_disk_report_is_df_bg(tmp_path: Path):
    monitor = metrics.DiskMonitor(tmp_path, interval=0.05).start()
    monitor.stop()
    header, row = monitor.report().splitlines()
    assert header.split()[:3] == ["Filesystem", "1G-blocks", "Used"]
    fields = row.split()
    assert len(fields) == 6
    assert re.fullmatch(r"\d+G", fields[2]) and fields[4].endswith("%")


def test_disk_report_is_the_working_folders_peak(tmp_path: Path):
    """The space the dataset's folder took at its largest, not the whole disk's use."""
    work = tmp_path / "work"
    work.mkdir()
    monitor = metrics.DiskMonitor(work, interval=3600)
    big = work / "big.fits"
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 20) * 3)  # 3 MiB of real blocks
    monitor.sample()
    big.unlink()
    monitor.sample()
    assert 3 << 20 <= monitor.peak_used < 4 << 20
    assert monitor.peak_used < shutil.disk_usage(tmp_path).used  # not the file system's use
    row = monitor.report().splitlines()[1].split()
    assert row[2] == "1G" and row[4] == "1%"


def test_json(tmp_path):
    metrics.write_json(tmp_path / "m.json", {"steps": {"a": 1.5}})
    assert json.loads((tmp_path / "m.json").read_text())["steps"]["a"] == 1.5

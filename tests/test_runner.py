import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from caldp import runner
from caldp.errors import Terminated


def py(code):
    return [sys.executable, "-c", code]


def test_merged_output_streamed_and_bad_bytes_replaced(tmp_path, caplog):
    caplog.set_level("INFO", logger="caldp")
    result = runner.run(
        py(
            "import sys; print('out1', flush=True); print('err1', file=sys.stderr, flush=True);"
            "sys.stdout.buffer.write(b'bad\\xff\\xfe bytes\\n')"
        ),
        cwd=tmp_path,
    )
    assert result.returncode == 0 and result.status == "exited 0"
    assert result.tail == ["out1", "err1", "bad\ufffd\ufffd bytes"]
    assert "err1" in caplog.text


def test_signal_reported_by_name(tmp_path):
    result = runner.run(py("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"), cwd=tmp_path)
    assert result.returncode == -signal.SIGSEGV
    assert result.status == "killed by SIGSEGV"


def test_memory_error_detected(tmp_path):
    result = runner.run(py("raise MemoryError"), cwd=tmp_path)
    assert result.returncode == 1 and result.memory_error and not result.enomem
    other = runner.run(py("raise ValueError('no memory talk here')"), cwd=tmp_path)
    assert not other.memory_error


def test_enomem_detected(tmp_path):
    result = runner.run(py("raise OSError(12, 'Cannot allocate memory')"), cwd=tmp_path)
    assert result.enomem


def test_env_passed_explicitly(tmp_path, monkeypatch):
    monkeypatch.setenv("X_PARENT", "parent")
    result = runner.run(
        py("import os; print(os.environ['jref'], os.environ['X_CAL'], 'X_PARENT' in os.environ)"),
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "jref": "/refs/", "X_CAL": "on"},
    )
    assert result.tail == ["/refs/ on False"]
    assert "jref" not in os.environ


def test_tail_is_bounded(tmp_path):
    result = runner.run(py("[print(i) for i in range(500)]"), cwd=tmp_path)
    assert len(result.tail) == runner.TAIL_LINES and result.tail[-1] == "499"


def test_no_shell(tmp_path):
    result = runner.run(["echo", "$HOME; touch injected"], cwd=tmp_path)
    assert result.tail == ["$HOME; touch injected"]
    assert not (tmp_path / "injected").exists()


def test_interrupted_run_stops_the_program(tmp_path, monkeypatch):
    """SIGTERM to caldp while a program runs: the program is stopped too."""
    monkeypatch.setattr(runner, "TERMINATE_GRACE_SECONDS", 2.0)
    pidfile = tmp_path / "pid"

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        with pytest.raises(Terminated):
            runner.run(
                py(
                    f"import os,time; open({str(pidfile)!r},'w').write(str(os.getpid())); time.sleep(60)"
                ),
                cwd=tmp_path,
            )
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    child = int(pidfile.read_text())
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan may wait for a reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_gone(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


LEFTOVER = (
    "import signal, subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)'])\n"
    "open({pidfile!r}, 'w').write(str(child.pid))\n"
    "print('parent done', flush=True)\n"
    "{then}\n"
)


@pytest.mark.fault(
    "a program exits 0 leaving a child that holds its stdout",
    "caldp returns when the program exits and kills the child (its process group)",
)
@pytest.mark.timeout(60)
def test_returns_when_the_program_exits_and_kills_what_it_left(tmp_path, caplog):
    """A program that exits 0 but leaves a child holding its stdout: caldp returns at the
    program's exit and kills the child (its process group)."""
    caplog.set_level("INFO", logger="caldp")
    pidfile = tmp_path / "child"
    result = runner.run(py(LEFTOVER.format(pidfile=str(pidfile), then="")), cwd=tmp_path)
    assert result.returncode == 0 and result.tail == ["parent done"]
    assert wait_gone(int(pidfile.read_text())), "the leftover child still runs"
    assert "leaving processes behind" in caplog.text


@pytest.mark.fault(
    "SIGTERM while a program runs whose child ignores SIGTERM",
    "the program and the child are stopped (SIGTERM, then SIGKILL to the group)",
)
def test_sigterm_stops_a_program_and_what_it_started(tmp_path, monkeypatch):
    """SIGTERM to caldp while a program runs: its child that ignores SIGTERM dies too."""
    monkeypatch.setattr(runner, "TERMINATE_GRACE_SECONDS", 2.0)
    pidfile = tmp_path / "child"

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    program = py(LEFTOVER.format(pidfile=str(pidfile), then="import time; time.sleep(60)"))
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        with pytest.raises(Terminated):
            runner.run(program, cwd=tmp_path)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert wait_gone(int(pidfile.read_text())), "the program's child still runs"


CALDP_LIKE = (
    "import sys\nfrom pathlib import Path\nfrom caldp import runner\n"
    "program = 'import os, sys, time; open(sys.argv[1], \"w\").write(str(os.getpid())); time.sleep(120)'\n"
    "runner.run([sys.executable, '-c', program, sys.argv[1]], cwd=Path('.'))\n"
)


@pytest.mark.fault(
    "SIGKILL of caldp while a program runs",
    "the kernel kills the program too (PR_SET_PDEATHSIG)",
)
def test_program_dies_with_caldp_killed_by_sigkill(tmp_path):
    """SIGKILL of caldp (no chance to clean up): the kernel kills the program too."""
    pidfile = tmp_path / "program"
    caldp_proc = subprocess.Popen([*py(CALDP_LIKE), str(pidfile)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() or not pidfile.read_text():
            assert caldp_proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        program = int(pidfile.read_text())
        caldp_proc.kill()
        caldp_proc.wait()
        assert wait_gone(program), "the program outlived caldp"
    finally:
        if caldp_proc.poll() is None:
            caldp_proc.kill()
        if pidfile.exists() and pidfile.read_text() and alive(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


BIG_LINE = (
    "import resource, sys\n"
    "from pathlib import Path\n"
    "resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
    "from caldp import runner\n"
    'writer = \'import sys\\nfor _ in range({mib}): sys.stdout.buffer.write(b"x" * 1048576)\\n'
    'print(" and the end")\'\n'
    "r = runner.run([sys.executable, '-c', writer], cwd=Path('.'))\n"
    "print(r.returncode, len(r.tail), max(len(t) for t in r.tail))\n"
)


@pytest.mark.fault(
    "a program prints a 512 MiB line without a newline",
    "caldp stays under 256 MiB of address space; the line is logged cut at 16 KiB",
)
def test_a_huge_line_is_cut_in_bounded_memory(tmp_path):
    """A 512 MiB line with no newline: caldp stays within 256 MiB of address space (it
    used to hold the whole line) and logs the line's first LINE_BYTES."""
    limit = 256 << 20
    proc = subprocess.run(
        py(BIG_LINE.format(limit=limit, mib=512)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    returncode, lines, longest = map(int, proc.stdout.split())
    assert returncode == 0 and lines == 1
    assert longest == runner.LINE_BYTES + len(runner.CUT_MARK)
    cut = (512 << 20) + len(" and the end") - runner.LINE_BYTES
    assert f"output not logged: {cut} bytes of lines longer than 16384 bytes\n" in proc.stderr


def test_long_lines_split_where_they_are_cut():
    lines = runner.Lines(limit=4)
    got = list(lines.feed(b"ab\nabcdefg")) + list(lines.feed(b"hij\nxy")) + list(lines.close())
    assert got == [b"ab", b"abcd" + runner.CUT_MARK, b"xy"]
    assert lines.cut_bytes == 6


@pytest.mark.fault(
    "a program prints more than the log's cap",
    "the log stops at the cap; a summary counts the rest, then the last lines",
)
def test_log_is_capped_and_the_excess_summarised(tmp_path, caplog, monkeypatch):
    """Past LOG_BYTES a program's lines are counted, not logged; the summary and the last
    lines end its output, and a MemoryError past the cap is still seen."""
    monkeypatch.setattr(runner, "LOG_BYTES", 1000)
    caplog.set_level("INFO", logger="caldp")
    result = runner.run(
        py("[print(f'line {i:04d}') for i in range(5000)]; print('MemoryError')"),
        cwd=tmp_path,
    )
    name = Path(sys.executable).name
    program_lines = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{name}: ")
    ]
    assert program_lines[:111] == [f"{name}: line {i:04d}" for i in range(111)]  # 111 x 9 bytes
    summary = (
        f"{name}: output not logged: 4890 lines (44012 bytes) past the cap of 1000 bytes "
        "per program; its last lines follow"
    )
    last = [f"{name}: line {i:04d}" for i in range(4961, 5000)] + [f"{name}: MemoryError"]
    assert program_lines[111:] == [summary, *last]  # then the last TAIL_LINES lines
    assert result.memory_error and result.tail[-1] == "MemoryError"

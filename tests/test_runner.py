import os
import signal
import sys
import threading
import time

import pytest

from caldp import runner
from caldp.sysexit import Terminated


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


def test_extra_env_passed_explicitly(tmp_path):
    result = runner.run(
        py("import os; print(os.environ['jref'], os.environ['X_CAL'])"),
        cwd=tmp_path,
        extra_env={"jref": "/refs/", "X_CAL": "on"},
    )
    assert result.tail == ["/refs/ on"]


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

"""``caldp-batch --local N``: real worker processes, real memory limits, real caldp-process."""

from __future__ import annotations

import resource
import sys
import textwrap
from pathlib import Path

import pytest

from caldp.batch.cli import main
from caldp.batch.decisions import Action, parse_ladder
from caldp.batch.local import LocalSettings, resolve_uri, run_locally, worker_argv
from tests.support.batch_fixtures import summary_rows

pytestmark = pytest.mark.usefixtures("importable_caldp")


def write_script(path: Path, body: str) -> list[str]:
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_worker_command_line(tmp_path):
    settings = LocalSettings(
        input_uri="file:inputs/{dataset}",
        output_uri="none",
        config="caldp-config-local",
        command=["caldp-process"],
    )
    rung = parse_ladder("2")[0]
    assert worker_argv("j8bt05njq", rung, settings, tmp_path) == [
        sys.executable, "-m", "caldp.batch.limit", "as", str(1792 << 20), "--",
        "caldp-process", "j8bt05njq", f"file:{tmp_path / 'inputs' / 'j8bt05njq'}", "none",
        "caldp-config-local",
    ]  # fmt: skip
    assert resolve_uri("file:/abs/dir", tmp_path) == "file:/abs/dir"
    assert resolve_uri("s3://b/inputs", tmp_path) == "s3://b/inputs"
    assert resolve_uri("s3://b/outputs/{dataset}", tmp_path, "o4er06llq") == (
        "s3://b/outputs/o4er06llq"
    )
    assert resolve_uri("file:", tmp_path) == f"file:{tmp_path}"


MMAP_SCRIPT = """
    import json, mmap, os, sys
    with open(os.environ["RECORD"], "a") as out:
        seen = {"argv": sys.argv[1:], "cwd": os.getcwd(), "home": os.environ.get("CALDP_HOME")}
        out.write(json.dumps(seen) + "\\n")
    try:
        block = mmap.mmap(-1, 512 * 1024 * 1024)  # address space, not resident memory
    except OSError:
        sys.exit(34)  # OS_MEMORY_ERROR, as caldp-process reports ENOMEM
    block[:4] = b"caldp"[:4]
    sys.exit(0)
"""


def test_memory_failure_under_a_real_limit_is_retried_higher(tmp_path, monkeypatch):
    import json

    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("RECORD", str(record))
    monkeypatch.setenv("CALDP_HOME", str(tmp_path / "elsewhere"))
    settings = LocalSettings(
        input_uri="file:in",
        output_uri="file:out",
        workdir=Path("work"),
        ladder=parse_ladder("0.25,2"),
        command=write_script(tmp_path / "worker.py", MMAP_SCRIPT),
    )
    (run,) = run_locally(["j8bt05njq"], 1, settings, base=tmp_path)
    assert [(a.rung.label, a.outcome.exit_code) for a in run.attempts] == [("0.25G", 34), ("2G", 0)]
    assert run.succeeded and run.decision.action is Action.DONE
    assert all(a.max_rss_kb and a.max_rss_kb > 1000 for a in run.attempts)
    assert all(a.wall_seconds is not None and a.wall_seconds > 0 for a in run.attempts)
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert [c["argv"] for c in calls] == [
        ["j8bt05njq", f"file:{tmp_path}/in", f"file:{tmp_path}/out", "caldp-config-onsite"]
    ] * 2
    assert [c["home"] for c in calls] == [None, None]  # working copies stay in the attempt folder
    assert [Path(c["cwd"]) for c in calls] == [
        tmp_path / "work" / "j8bt05njq" / "attempt-1-0.25G",
        tmp_path / "work" / "j8bt05njq" / "attempt-2-2G",
    ]
    # Without a limit the same worker succeeds at once: the limit made the difference.
    unlimited = LocalSettings(**{**settings.__dict__, "rlimit": "none"})
    (run,) = run_locally(["j8bt05njq"], 1, unlimited, base=tmp_path)
    assert [(a.rung.label, a.outcome.exit_code) for a in run.attempts] == [("0.25G", 0)]


def test_a_worker_that_cannot_start_is_retried_on_the_same_rung(tmp_path):
    settings = LocalSettings(
        command=[str(tmp_path / "no-such-caldp-process")], max_container_retries=2
    )
    (run,) = run_locally(["o4er06llq"], 2, settings, base=tmp_path)
    assert [a.rung.label for a in run.attempts] == ["2G", "2G", "2G"]
    assert run.decision.action is Action.FAILED and run.exit_code is None
    assert run.decision.name == "WorkerStartError"


def test_workers_run_at_the_same_time(tmp_path, monkeypatch):
    # Each worker waits for the other's start mark: only parallel workers both succeed.
    monkeypatch.setenv("MARKS", str(tmp_path))
    script = """
        import os, sys, time
        marks, me = os.environ["MARKS"], sys.argv[1]
        open(os.path.join(marks, "started-" + me), "w").close()
        other = {"j8bt05njq": "ldfd01010", "ldfd01010": "j8bt05njq"}[me]
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(marks, "started-" + other)):
            if time.monotonic() > deadline:
                sys.exit(1)
            time.sleep(0.05)
    """
    settings = LocalSettings(command=write_script(tmp_path / "pair.py", script))
    runs = run_locally(["j8bt05njq", "ldfd01010"], 2, settings, base=tmp_path)
    assert [(r.dataset, r.exit_code) for r in runs] == [("j8bt05njq", 0), ("ldfd01010", 0)]


COS_ACQ = "lb4l02m2q"  # a COS ACQ/PEAKD: calcos exits 5, which is success for COS


@pytest.fixture
def cos_acq_env(testdata, crds_cache, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRDS_PATH", str(crds_cache))
    for name in ("CRDS_SERVER_URL", "CRDS_READONLY_CACHE", "CRDS_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    return ["--input", f"file:{testdata / 'cos' / 'acq'}", "--output", "file:out"] + [
        "--config",
        "caldp-config-local",
    ]


@pytest.mark.slow
def test_real_memory_errors_climb_the_whole_ladder(cos_acq_env, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", "32")
    rc = main(["--local", "1", *cos_acq_env, COS_ACQ])
    rows = summary_rows(capsys.readouterr().out)
    assert rc == 1
    assert rows[COS_ACQ][1:7] == ["32", "CALDP_MEMORY_ERROR", "2G", "8G", "16G", "64G"]
    attempts = sorted(p.name for p in (tmp_path / "caldp-batch-work" / COS_ACQ).iterdir())
    assert attempts == ["attempt-1-2G", "attempt-2-8G", "attempt-3-16G", "attempt-4-64G"]
    assert (tmp_path / "out" / "messages" / f"error-{COS_ACQ}").is_file()


@pytest.mark.slow
def test_real_success_under_the_first_rung(cos_acq_env, capsys, tmp_path):
    own_limit = resource.getrlimit(resource.RLIMIT_AS)
    rc = main(["--local", "1", *cos_acq_env, COS_ACQ])
    rows = summary_rows(capsys.readouterr().out)
    assert rc == 0
    assert rows[COS_ACQ][1:4] == ["0", "SUCCESS", "2G"]
    # Peak RSS counts the calcos child too: well above a bare Python's.
    assert float(rows[COS_ACQ][5]) > 50
    assert (tmp_path / "out" / "messages" / f"processed-{COS_ACQ}.trigger").is_file()
    assert resource.getrlimit(resource.RLIMIT_AS) == own_limit  # only the workers are limited

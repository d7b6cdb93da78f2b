"""Rerun safety: the same dataset again, after a failure, after a killed run, and two
datasets at once into one output folder."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.support import synthetic
from tests.support.pipeline_helpers import hashes, messages, records, run, tree

ASN = "j8cb010b0"
KILL_AT_SWAP = r"""
import os, pathlib, sys, time
marker = sys.argv[1]
real_rename = os.rename
def rename(src, dst, *args, **kwargs):
    if ".partial-" in os.fspath(src):  # the new delivery is about to be swapped in
        pathlib.Path(marker).write_text("swapping")
        time.sleep(120)
    return real_rename(src, dst, *args, **kwargs)
os.rename = rename
from caldp.cli import main
sys.exit(main(sys.argv[2:]))
"""
TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z ", re.MULTILINE)


def stable(out: Path) -> dict[str, str]:
    """Digests of what must not change between identical runs: every FITS product, preview
    and message, and the members of an inputs tarball (logs, metrics and the stand-ins'
    trailers carry times, a tarball its members' times)."""
    digests = {}
    for name, digest in hashes(out).items():
        if name.endswith((".fits", ".jpg", ".png")) or name.startswith("messages/"):
            digests[name] = digest
        elif name.endswith(".tar.gz"):
            with tarfile.open(out / name) as tar:
                for member in tar:
                    data = tar.extractfile(member).read() if member.isfile() else b""
                    keep = hashlib.sha256(data).hexdigest() if member.name.endswith(".fits") else ""
                    digests[f"{name}!{member.name}"] = keep
    return digests


def hidden(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*"))


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_same_dataset_twice_gives_the_same_tree_and_bytes(pipeline_env, monkeypatch, fail):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", ASN)
    if fail:
        monkeypatch.setenv("CALDP_STANDIN_FAIL", "1")
        monkeypatch.setenv("CALDP_STANDIN_ONLY", "runastrodriz")
    out = tmp / "out"
    code = 24 if fail else 0
    assert run(ASN, tmp / "src", out) == code
    first, first_stable = tree(out), stable(out)
    time.sleep(1.1)  # different log times, same products
    assert run(ASN, tmp / "src", out) == code
    assert tree(out) == first
    assert stable(out) == first_stable
    assert len(first_stable) >= (4 if fail else 10)
    assert not hidden(out)


def test_success_then_failure_leaves_no_stale_products(pipeline_env, monkeypatch):
    """The second run's failure must not leave the first run's products looking current."""
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", ASN)
    out = tmp / "out"
    assert run(ASN, tmp / "src", out) == 0
    base = out / "data" / "acs" / ASN
    assert (base / "j8cb01a1q_flt.fits").exists() and (base / "previews").exists()
    monkeypatch.setenv("CALDP_STANDIN_FAIL", "2")
    monkeypatch.setenv("CALDP_STANDIN_ONLY", "calacs.e")
    assert run(ASN, tmp / "src", out) == 23
    assert messages(out) == [f"error-{ASN}"]
    assert sorted(p.name for p in base.iterdir()) == [f"{ASN}_inputs.tar.gz", "logs"]
    lines = (out / "messages" / f"error-{ASN}").read_text().splitlines()
    assert set(lines[1:]) == set(tree(out)) - {f"messages/error-{ASN}"}
    assert not hidden(out)


def test_run_killed_while_swapping_then_rerun_leaves_no_stale_state(pipeline_env):
    """SIGKILL (no chance to clean up: a container killed for memory) at the worst moment
    of delivery -- the old folder moved aside, the new one not yet in place -- then a
    rerun: no stale message, no leftover partial or old folder."""
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", ASN)
    out = tmp / "out"
    base = out / "data" / "acs" / ASN
    assert run(ASN, tmp / "src", out) == 0
    delivered = stable(out)

    marker = tmp / "swapping"
    argv = [ASN, f"file:{tmp / 'src'}", f"file:{out}", "caldp-config-local"]
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", KILL_AT_SWAP, str(marker), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "never reached the swap"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # what the killed run left: nothing that looks finished (and its lock file, unlocked)
    assert messages(out) == [f".{ASN}.lock", f"processing-{ASN}"]
    assert not base.exists()
    assert any(".old-" in name for name in hidden(out))
    assert any(".partial-" in name for name in hidden(out))

    assert run(ASN, tmp / "src", out) == 0
    assert messages(out) == [f"processed-{ASN}.trigger"]
    assert not hidden(out), hidden(out)
    assert stable(out) == delivered


def _log_span(log: Path) -> tuple[datetime, datetime]:
    times = [datetime.fromisoformat(t) for t in TIMESTAMP.findall(log.read_text())]
    return times[0], times[-1]


def test_two_datasets_at_once_into_one_output(pipeline_env, monkeypatch):
    """Two processes, two datasets sharing a name prefix and an input folder, one output
    folder and one CALDP_HOME, running at the same time."""
    tmp = pipeline_env
    names = ["j8cb01u1q", "j8cb01u2q"]
    for ds in names:
        synthetic.make_dataset(tmp / "src", ds)
    out = tmp / "out"
    monkeypatch.setenv("CALDP_STANDIN_SLEEP", "1.5")
    procs = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "caldp", ds, f"file:{tmp / 'src'}", f"file:{out}"]
            + ["caldp-config-local"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ds in names
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]

    assert messages(out) == [f"processed-{ds}.trigger" for ds in names]
    spans = []
    for ds, other in (names, names[::-1]):
        base = out / "data" / "acs" / ds
        lines = (out / "messages" / f"processed-{ds}.trigger").read_text().splitlines()
        assert lines[0] == f"processed-{ds}.trigger"
        assert lines[1:] == sorted(str(p.relative_to(out)) for p in base.rglob("*") if p.is_file())
        products = [p.name for p in base.iterdir() if p.is_file()]
        assert f"{ds}_raw.fits" in products and f"{ds}_flt.fits" in products
        assert not [name for name in tree(base) if other in name]
        log = base / "logs" / "process.txt"
        assert other not in log.read_text()
        spans.append(_log_span(log))
    (start_a, end_a), (start_b, end_b) = spans
    assert start_a < end_b and start_b < end_a, "the two runs did not overlap"
    ran = {r["argv"][-1] for r in records(tmp)}
    assert ran == {f"{ds}_raw.fits" for ds in names}
    assert not hidden(out)
    assert not (Path(os.environ["CALDP_HOME"]) / "caldp-work").exists() or not any(
        (Path(os.environ["CALDP_HOME"]) / "caldp-work").iterdir()
    )


@pytest.mark.fault(
    "a message write killed half-way; submit- from the orchestrator",
    "the next run removes the .tmp file; processing- replaces submit-",
)
def test_processing_replaces_submit_and_removes_interrupted_message_writes(pipeline_env):
    """The orchestrator's ``submit-`` goes when ``processing-`` comes (one state message per
    dataset at a time); the temporary file of a message write killed half-way is removed
    by the next run; other datasets' files and other states are left alone."""
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", ASN)
    folder = tmp / "out" / "messages"
    folder.mkdir(parents=True)
    kept = [f"placed-{ASN}", "submit-j8cb010c0", ".error-j8cb010c0.0123abcd.tmp"]
    left = [f".processed-{ASN}.trigger.5f3e9a01.tmp", f".error-{ASN}.deadbeef.tmp"]
    for name in [f"submit-{ASN}", *kept, *left]:
        (folder / name).write_text("earlier\n")
    assert run(ASN, tmp / "src", tmp / "out") == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"processed-{ASN}.trigger", *kept])


HOLD_IN_STEP = r"""
import importlib, pathlib, sys, time
target, marker, release = sys.argv[1], sys.argv[2], sys.argv[3]
module_name, _, name = target.partition(":")
owner = importlib.import_module(module_name)
original = getattr(owner, name)
def held(*args, **kwargs):
    pathlib.Path(marker).write_text("in the step")
    deadline = time.monotonic() + 120
    while not pathlib.Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return original(*args, **kwargs)
setattr(owner, name, held)
from caldp.cli import main
sys.exit(main(sys.argv[4:]))
"""


def _s3_state(output: str) -> dict[str, str]:
    from tests.support.s3_fixtures import s3_client

    client = s3_client(os.environ["AWS_ENDPOINT_URL"])
    bucket = output.split("/")[2]
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


@pytest.mark.fault(
    "the same dataset run twice at once (same or another CALDP_HOME, file: or S3 output)",
    "the second run exits 30 and changes nothing; the first completes as if alone",
)
@pytest.mark.parametrize(
    "home, output",
    [("same", "file"), ("other", "file"), ("same", "other file"), ("other", "s3")],
    ids=["same-home", "same-output", "same-home-other-output", "same-s3-output"],
)
def test_the_same_dataset_twice_at_once_refuses_the_second_run(
    pipeline_env, request, monkeypatch, capfd, home, output
):
    """The first run is held inside stage 1 (a hook waits for a file), so the second run
    starts while the first holds its locks, every time."""
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", ASN)
    out = tmp / "out"
    first_out = f"file:{out}"
    if output == "s3":
        from tests.support.s3_fixtures import s3_client, use_fast_retries

        endpoint = request.getfixturevalue("aws_env")
        use_fast_retries(monkeypatch)
        s3_client(endpoint).create_bucket(Bucket="caldp-race")
        first_out = f"s3://caldp-race/outputs/{ASN}"
    second_out = f"file:{tmp / 'out2'}" if output == "other file" else first_out

    def state() -> object:
        return _s3_state(first_out) if output == "s3" else hashes(out)

    marker, release = tmp / "in-stage1", tmp / "release"
    argv = [ASN, f"file:{tmp / 'src'}", first_out, "caldp-config-local"]
    first = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", HOLD_IN_STEP, "caldp.runner:run", str(marker), str(release), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert first.poll() is None, first.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the first run never reached stage 1"
            time.sleep(0.05)
        before = state()
        if home == "other":
            monkeypatch.setenv("CALDP_HOME", str(tmp / "home2"))
        capfd.readouterr()
        assert run(ASN, tmp / "src", second_out) == 30
        console = capfd.readouterr().err
        assert "in use by another run" in console or "in progress" in console, console
        assert state() == before, "the refused run changed the first run's output"
        assert not (tmp / "out2").exists() or not any((tmp / "out2").rglob("*"))
    finally:
        release.write_text("go")
        _, err = first.communicate(timeout=180)
    assert first.returncode == 0, err[-3000:]
    if output == "s3":
        keys = _s3_state(first_out)
        assert f"messages/processed-{ASN}.trigger" in keys
        assert not [k for k in keys if "error-" in k or "processing-" in k]
    else:
        assert messages(out) == [f"processed-{ASN}.trigger"]
        lines = (out / "messages" / f"processed-{ASN}.trigger").read_text().splitlines()
        assert lines[1:] == [f for f in tree(out) if not f.startswith("messages/")]
        assert not hidden(out)

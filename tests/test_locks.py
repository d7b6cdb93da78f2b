"""caldp.locks: one run of a dataset at a time, per working folder and per output."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from caldp import locks
from caldp.errors import DatasetBusy

HOLD = """
import sys, time
from pathlib import Path
from caldp import locks
lock = locks.acquire(Path(sys.argv[1]), "the test folder")
print("held", flush=True)
time.sleep(60)
"""


def test_holder_names_this_process_and_host():
    text = locks.holder()
    assert re.fullmatch(
        rf"pid {os.getpid()} on {re.escape(socket.gethostname())} since "
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        text,
    )


def test_busy_is_the_dataset_busy_error():
    assert locks.Busy is DatasetBusy


def test_acquire_then_release_removes_the_lock_file(tmp_path):
    path = tmp_path / "caldp-work" / "j8cb01u1q.lock"
    lock = locks.acquire(path, "the working folder")
    assert path.read_text().startswith(f"pid {os.getpid()} ")
    lock.release()
    assert not path.exists() and lock.fd == -1
    lock.release()  # a second release does nothing
    again = locks.acquire(path, "the working folder")  # free again
    again.release()


def test_a_second_holder_is_refused_naming_the_first_and_changing_nothing(tmp_path):
    path = tmp_path / "j8cb01u1q.lock"
    holder = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        written = path.read_text()
        with pytest.raises(locks.Busy) as refused:
            locks.acquire(path, "the test folder")
        message = str(refused.value)
        assert message.startswith("the test folder is in use by another run of the dataset")
        assert f"pid {holder.pid} " in message and "changes nothing" in message
        assert path.read_text() == written
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the killed holder's lock: the next run takes it
    lock = locks.acquire(path, "the test folder")
    assert path.read_text().startswith(f"pid {os.getpid()} ")
    lock.release()


def test_s3_lock_text_names_the_run_its_holder_and_its_batch_job():
    text = locks.s3_lock_text("ab12", "job-1")
    assert text.startswith(f"run ab12 pid {os.getpid()} on ") and text.endswith(
        " batch job job-1\n"
    )
    assert locks.s3_lock_text("ab12", "").endswith(" batch job -\n")


@pytest.mark.parametrize(
    "text, job",
    [
        (locks.s3_lock_text("ab12", "job-1"), "job-1"),
        (locks.s3_lock_text("ab12", ""), ""),  # outside AWS Batch
        ("run ab12 pid 7 on host since T batch job job-1 \n", "job-1"),
        ("", ""),
        ("written by someone else\n", ""),
    ],
)
def test_the_job_a_lock_names(text, job):
    assert locks.batch_job_of(text) == job

"""One run of a dataset at a time per working folder and per output.

Two runs of one dataset into one output, or in one working folder, would
replace each other's files and messages.  Each run therefore holds an
exclusive lock, taken before it touches anything:

* on its working folder: ``$CALDP_HOME/caldp-work/<ds>.lock``;
* on a ``file:DIR`` output: ``DIR/messages/.<ds>.lock``;
* on an S3 output: ``processing-<ds>`` itself, created only if it does not
  exist (:mod:`caldp.storage.s3`).

A second run is refused with :class:`Busy` (exit 30, DATASET_BUSY) and changes
nothing.  File locks are ``flock`` locks: the kernel releases them when their
holder dies, however it dies, so a killed run never blocks the next one.  The
lock file names its holder (process, host, start time) for the refusal's
message, and is removed when released.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from caldp.errors import DatasetBusy as Busy

__all__ = ["Busy", "Lock", "acquire", "batch_job_of", "holder", "s3_lock_text"]

_BATCH_JOB = " batch job "


def holder() -> str:
    """Who is running: this process, its host, and when it started."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"pid {os.getpid()} on {socket.gethostname()} since {started}"


def s3_lock_text(run: str, job: str) -> str:
    """The text of an S3 ``processing-<ds>``: this run's id, its holder, and the AWS
    Batch job it runs in (``-`` outside AWS Batch)."""
    return f"run {run} {holder()}{_BATCH_JOB}{job or '-'}\n"


def batch_job_of(text: str) -> str:
    """The AWS Batch job that wrote an S3 ``processing-<ds>`` (:func:`s3_lock_text`),
    or ``""`` when the text names none."""
    _, found, job = text.strip().rpartition(_BATCH_JOB)
    job = job.strip()
    return job if found and job != "-" else ""


@dataclass
class Lock:
    path: Path
    fd: int

    def release(self) -> None:
        """Remove the lock file, then unlock (a run waiting on the old file retries)."""
        if self.fd < 0:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:  # a folder gone read-only: the next run takes it and removes it
            pass
        finally:
            os.close(self.fd)
            self.fd = -1


def acquire(path: Path, what: str) -> Lock:
    """Lock ``path`` (created, with its folder) for this process, or raise :class:`Busy`
    at once if another run holds it; ``what`` names the locked thing in the refusal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        # read-only: an open file for writing would keep its file system from being
        # remounted read-only while the run holds it
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise Busy(
                f"{what} is in use by another run of the dataset ({other}): this run is "
                "refused and changes nothing; run it again once the other has finished"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The holder before us may have removed the file between our open and our lock:
        # then we hold a lock on a file nobody else will see; start again.
        mine = os.fstat(fd)
        try:
            now = os.stat(path)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
            break
        os.close(fd)
    try:  # who holds it, for the refusal's message (a full disk may not take it)
        path.write_text(holder())
    except OSError:
        pass
    return Lock(path, fd)

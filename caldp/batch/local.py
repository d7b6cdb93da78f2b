"""``caldp-batch --local N``: the same list and retry table, on this machine.

N worker threads each start one full ``caldp-process`` at a time, in its own
working folder ``<workdir>/<dataset>/attempt-<n>-<rung>/`` with its output in
``caldp-process.log`` there (``CALDP_HOME`` is not passed on, so caldp-process
keeps its working copies in that folder too).  Each attempt runs under the rung's memory limit
(RLIMIT_AS by default, set by :mod:`caldp.batch.limit` before it becomes
caldp-process), so a dataset that runs out of memory fails with a memory code
and is retried on the next rung.  The exit status and the peak resident memory
(``ru_maxrss`` of the worker and its children) come from ``os.wait4``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from caldp.batch.decisions import (
    DEFAULT_LADDER,
    DEFAULT_MAX_CONTAINER_RETRIES,
    WORKER_START_ERROR,
    Action,
    Attempt,
    DatasetRun,
    Outcome,
    Rung,
)

log = logging.getLogger("caldp.batch.local")

RLIMIT_KINDS = ("as", "data", "none")


def process_command() -> list[str]:
    """How to start caldp-process: the installed command, else this Python's ``-m caldp``."""
    found = shutil.which("caldp-process")
    return [found] if found else [sys.executable, "-m", "caldp"]


def resolve_uri(uri: str, base: Path, dataset: str = "") -> str:
    """``{dataset}`` replaced by the dataset name, and ``file:`` URIs made absolute
    against ``base`` (workers run in their own folders)."""
    uri = uri.replace("{dataset}", dataset)
    if uri.lower().startswith("file:"):
        path = Path(uri[len("file:") :] or ".")
        return "file:" + str(path if path.is_absolute() else (base / path).resolve())
    return uri


@dataclass(frozen=True)
class LocalSettings:
    input_uri: str = "file:."
    output_uri: str = "file:."
    config: str = "caldp-config-onsite"
    workdir: Path = Path("caldp-batch-work")
    ladder: Sequence[Rung] = DEFAULT_LADDER
    max_container_retries: int = DEFAULT_MAX_CONTAINER_RETRIES
    rlimit: str = "as"
    command: Sequence[str] | None = None  # default: process_command()
    environment: Mapping[str, str] = field(default_factory=dict)  # added to os.environ

    def __post_init__(self) -> None:
        if self.rlimit not in RLIMIT_KINDS:
            raise ValueError(f"rlimit must be one of {', '.join(RLIMIT_KINDS)}")


def worker_argv(dataset: str, rung: Rung, settings: LocalSettings, base: Path) -> list[str]:
    """The full command line of one attempt, memory-limit wrapper included."""
    command = list(settings.command or process_command())
    argv = [
        *command,
        dataset,
        resolve_uri(settings.input_uri, base, dataset),
        resolve_uri(settings.output_uri, base, dataset),
        settings.config,
    ]
    if settings.rlimit == "none":
        return argv
    limit = [sys.executable, "-m", "caldp.batch.limit", settings.rlimit, str(rung.memory_bytes)]
    return [*limit, "--", *argv]


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by signal N -> 128+N


def run_attempt(run: DatasetRun, settings: LocalSettings, base: Path) -> Attempt:
    """Run caldp-process once for ``run`` on its current rung and wait for it."""
    rung = run.rung
    number = len(run.attempts) + 1
    folder = (base / settings.workdir / run.dataset / f"attempt-{number}-{rung.label}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    logfile = folder / "caldp-process.log"
    argv = worker_argv(run.dataset, rung, settings, base)
    env = {**os.environ, **settings.environment}
    env.pop("CALDP_HOME", None)  # caldp-process keeps its working copies in the attempt folder
    program = (settings.command or process_command())[0]
    if shutil.which(program, path=env.get("PATH")) is None:
        reason = f"{WORKER_START_ERROR}: command not found: {program}"
        return Attempt(rung, Outcome(None, reason))
    log.info("%s: attempt %d on %s in %s", run.dataset, number, rung.label, folder)
    started = time.monotonic()
    try:
        with open(logfile, "wb") as out:
            proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
    except OSError as exc:
        return Attempt(rung, Outcome(None, f"{WORKER_START_ERROR}: {exc}"))
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        raise
    code = _exit_code(status)
    proc.returncode = code
    wall = time.monotonic() - started
    return Attempt(
        rung,
        Outcome(code),
        wall_seconds=wall,
        max_rss_kb=int(usage.ru_maxrss),  # kilobytes on Linux
    )


def run_dataset(dataset: str, settings: LocalSettings, base: Path) -> DatasetRun:
    """Every attempt of one dataset, up the ladder as the retry table says."""
    run = DatasetRun(dataset, settings.ladder, settings.max_container_retries)
    while True:
        attempt = run_attempt(run, settings, base)
        rung = attempt.rung
        decision = run.record(attempt)
        log.log(
            logging.INFO if decision.action is Action.DONE else logging.WARNING,
            "%s: attempt %d on %s: exit %s %s -> %s%s",
            dataset,
            len(run.attempts),
            rung.label,
            "-" if decision.exit_code is None else decision.exit_code,
            decision.name,
            decision.action.value,
            f" ({decision.why})" if decision.why else "",
        )
        if not decision.action.is_retry:
            return run


def run_locally(
    datasets: Sequence[str], workers: int, settings: LocalSettings, base: Path | None = None
) -> list[DatasetRun]:
    """Run ``datasets`` with ``workers`` caldp-process at a time; results in the order given.

    Relative ``file:`` URIs and the work folder are taken relative to ``base``
    (default: the current directory).
    """
    if workers < 1:
        raise ValueError("the number of workers must be at least 1")
    base = (base or Path.cwd()).resolve()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="caldp-worker") as pool:
        futures = [pool.submit(run_dataset, ds, settings, base) for ds in datasets]
        try:
            return [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # start no more; let running ones end
            raise

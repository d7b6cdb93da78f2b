"""The retry table shared by the AWS Batch and local runners, and the summary table.

The decision is made from the outcome of one attempt alone: the exit code of
caldp-process and, when there is no exit code or the runtime killed the job,
the runtime's reason text (an AWS Batch container or status reason).

=====================================  ==================================================
outcome                                action
=====================================  ==================================================
exit 0                                 done
exit 31, 32, 33, 34 (memory)           next rung of the memory ladder; on the last rung:
                                       failed
runtime out-of-memory kill             same as exit 33 CONTAINER_MEMORY_ERROR
(reason ``OutOfMemoryError...``)
no exit code, the container or the     same rung again, at most ``max_start_retries``
worker could not start (reasons in     times for the dataset; then failed
``START_FAILURE_REASONS``)
anything else (1, 2, 21-28, 40, 41,    failed, no retry
signals, unknown codes, no exit code
without a known reason)
=====================================  ==================================================
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from caldp.exit_codes import ExitCode

MEMORY_CODES = frozenset(int(c) for c in ExitCode if c.is_memory_error)

# AWS Batch / ECS reasons meaning the container never ran, and the local pool's
# reason for a worker process that could not be started.
START_FAILURE_REASONS = (
    "CannotStartContainerError",
    "CannotCreateContainerError",
    "CannotPullContainerError",
    "CannotInspectContainerError",
    "DockerTimeoutError",
    "ResourceInitializationError",
    "Task failed to start",
    "WorkerStartError",
)
# The container runtime's reason for a container killed for exceeding its memory.
OUT_OF_MEMORY_REASONS = ("OutOfMemoryError",)

DEFAULT_LADDER_GB = (2, 8, 16, 64)
DEFAULT_MAX_START_RETRIES = 2


@dataclass(frozen=True)
class Rung:
    """One step of the memory ladder: a memory size (and the vCPUs asked for on AWS)."""

    gigabytes: float
    vcpus: int = 1

    @property
    def memory_mib(self) -> int:
        return int(round(self.gigabytes * 1024))

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 1024 * 1024

    @property
    def label(self) -> str:
        value = int(self.gigabytes) if float(self.gigabytes).is_integer() else self.gigabytes
        return f"{value}G"


DEFAULT_LADDER = tuple(Rung(gb) for gb in DEFAULT_LADDER_GB)


def parse_ladder(text: str) -> tuple[Rung, ...]:
    """``"2,8,16,64"`` -> rungs of 2, 8, 16 and 64 GB (strictly increasing, positive)."""
    try:
        sizes = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"memory ladder {text!r}: expected GB numbers like 2,8,16,64") from None
    if not sizes:
        raise ValueError("the memory ladder is empty")
    if any(s <= 0 for s in sizes) or any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(f"memory ladder {text!r}: sizes must be positive and increasing")
    return tuple(Rung(s) for s in sizes)


class Kind(enum.Enum):
    SUCCESS = "success"
    MEMORY = "memory"
    START_FAILURE = "start-failure"
    ERROR = "error"


class Action(enum.Enum):
    DONE = "done"
    RETRY_MORE_MEMORY = "retry-more-memory"
    RETRY_SAME_RUNG = "retry-same-rung"
    FAILED = "failed"

    @property
    def is_retry(self) -> bool:
        return self in (Action.RETRY_MORE_MEMORY, Action.RETRY_SAME_RUNG)


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: an exit code (``None`` if the process gave none) and a reason.

    A process killed by signal N has exit code 128+N, as the container runtime reports it.
    """

    exit_code: int | None
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    action: Action
    kind: Kind
    exit_code: int | None  # the code the summary reports (33 for an out-of-memory kill)
    name: str
    why: str = ""


def exit_name(code: int | None) -> str:
    """A caldp exit code's name, a signal's name for 128+N, else ``UNKNOWN``."""
    if code is None:
        return "NO_EXIT_CODE"
    try:
        return ExitCode(code).name
    except ValueError:
        pass
    if code > 128:
        try:
            return signal.Signals(code - 128).name
        except ValueError:
            pass
    return "UNKNOWN"


def _matches(reason: str, prefixes: Iterable[str]) -> str | None:
    for prefix in prefixes:
        if reason.startswith(prefix) or f" {prefix}" in reason or f":{prefix}" in reason:
            return prefix
    return None


def classify(outcome: Outcome) -> tuple[Kind, int | None, str]:
    """The kind of an outcome, the exit code to report and its name."""
    code, reason = outcome.exit_code, outcome.reason.strip()
    if code == ExitCode.SUCCESS:
        return Kind.SUCCESS, 0, ExitCode.SUCCESS.name
    if code in MEMORY_CODES:
        return Kind.MEMORY, code, exit_name(code)
    if _matches(reason, OUT_OF_MEMORY_REASONS):
        code = int(ExitCode.CONTAINER_MEMORY_ERROR)
        return Kind.MEMORY, code, exit_name(code)
    if code is None:
        prefix = _matches(reason, START_FAILURE_REASONS)
        if prefix:
            return Kind.START_FAILURE, None, prefix
    return Kind.ERROR, code, exit_name(code)


def decide(
    outcome: Outcome,
    rung_index: int,
    rungs: int,
    start_failures: int,
    max_start_retries: int = DEFAULT_MAX_START_RETRIES,
) -> Decision:
    """What to do after an attempt on rung ``rung_index`` (of ``rungs``) ended with ``outcome``.

    ``start_failures`` counts the dataset's earlier attempts that could not start.
    """
    kind, code, name = classify(outcome)
    reason = outcome.reason.strip()
    if kind is Kind.SUCCESS:
        return Decision(Action.DONE, kind, code, name)
    if kind is Kind.MEMORY:
        if rung_index + 1 < rungs:
            return Decision(Action.RETRY_MORE_MEMORY, kind, code, name, "memory: next rung")
        return Decision(Action.FAILED, kind, code, name, "out of memory on the largest rung")
    if kind is Kind.START_FAILURE:
        if start_failures < max_start_retries:
            return Decision(Action.RETRY_SAME_RUNG, kind, code, name, reason)
        tries = start_failures + 1
        return Decision(Action.FAILED, kind, code, name, f"could not start in {tries} tries")
    why = reason or (ExitCode(code).description if name in ExitCode.__members__ else "")
    return Decision(Action.FAILED, kind, code, name, why)


@dataclass
class Attempt:
    """One run of caldp-process for a dataset, on one rung."""

    rung: Rung
    outcome: Outcome
    wall_seconds: float | None = None
    max_rss_kb: int | None = None
    job_id: str = ""
    queue: str = ""
    log: str = ""


@dataclass
class DatasetRun:
    """A dataset's way up the ladder: its attempts and the decision after the last one."""

    dataset: str
    ladder: Sequence[Rung] = DEFAULT_LADDER
    max_start_retries: int = DEFAULT_MAX_START_RETRIES
    rung_index: int = 0
    start_failures: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    decision: Decision | None = None

    @property
    def rung(self) -> Rung:
        return self.ladder[self.rung_index]

    @property
    def finished(self) -> bool:
        return self.decision is not None and not self.decision.action.is_retry

    @property
    def succeeded(self) -> bool:
        return self.decision is not None and self.decision.action is Action.DONE

    def record(self, attempt: Attempt) -> Decision:
        """Add an attempt, decide, and move to the rung of the next attempt if any."""
        self.attempts.append(attempt)
        decision = decide(
            attempt.outcome,
            self.rung_index,
            len(self.ladder),
            self.start_failures,
            self.max_start_retries,
        )
        if decision.kind is Kind.START_FAILURE:
            self.start_failures += 1
        if decision.action is Action.RETRY_MORE_MEMORY:
            self.rung_index += 1
        self.decision = decision
        return decision

    @property
    def exit_code(self) -> int | None:
        return self.decision.exit_code if self.decision else None

    @property
    def wall_seconds(self) -> float | None:
        times = [a.wall_seconds for a in self.attempts if a.wall_seconds is not None]
        return sum(times) if times else None

    @property
    def max_rss_kb(self) -> int | None:
        sizes = [a.max_rss_kb for a in self.attempts if a.max_rss_kb is not None]
        return max(sizes) if sizes else None


def format_summary(runs: Sequence[DatasetRun]) -> str:
    """A plain-text table: dataset, exit code, name, attempts, wall time, max RSS, note."""
    header = ("dataset", "exit", "name", "attempts", "wall s", "max RSS MB", "note")
    rows = [header]
    for run in runs:
        decision = run.decision
        code = "-" if run.exit_code is None else str(run.exit_code)
        name = decision.name if decision else "NOT_RUN"
        tried = " ".join(a.rung.label for a in run.attempts) or "-"
        wall = "-" if run.wall_seconds is None else f"{run.wall_seconds:.1f}"
        rss = "-" if run.max_rss_kb is None else f"{run.max_rss_kb / 1024:.1f}"
        note = decision.why if decision and not run.succeeded else ""
        rows.append((run.dataset, code, name, tried, wall, rss, note[:70]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    ok = sum(1 for r in runs if r.succeeded)
    lines.append(f"{ok} of {len(runs)} datasets succeeded")
    return "\n".join(lines)

"""The retry table shared by the AWS Batch and local runners, and the summary table.

The decision is made from the outcome of one attempt alone, as CALCLOUD's
batch-event handler makes it: the exit code of caldp-process, the container's
reason and the job's status reason (AWS Batch's ``container.reason`` and
``statusReason``).  The ladder and the limits are data: ``ladder.json``.

=====================================  ==================================================
outcome                                action
=====================================  ==================================================
exit 0                                 done
status reason ``Operator cancelled``   terminated, no retry
exit 31, 32, 33, 34 (memory), or a     next rung of the memory ladder, at most
container reason ``OutOfMemoryError:   ``max_memory_retries`` times; on the last rung:
Container killed``                     failed (a runtime kill is reported as 33)
container reason                       same rung again, whatever the exit code, at most
``CannotInspectContainer`` or          ``max_container_retries`` times for the dataset;
``DockerTimeoutError`` (the local      then failed
pool's ``WorkerStartError``)
anything else (1, 2, 21-28, 40, 41,    failed, no retry
143, other signals, unknown codes)
=====================================  ==================================================
"""

from __future__ import annotations

import enum
import json
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from caldp.exit_codes import ExitCode

MEMORY_CODES = frozenset(int(c) for c in ExitCode if c.is_memory_error)

# The local pool's reason for a worker process that could not be started: retried on
# the same rung like the container faults of AWS Batch.
WORKER_START_ERROR = "WorkerStartError"


def _load_table() -> dict[str, Any]:
    text = resources.files("caldp.batch").joinpath("ladder.json").read_text()
    return json.loads(text)


TABLE = _load_table()
ECS_RESERVED_MIB_PER_GIB: int = TABLE["ecs_reserved_mib_per_gib"]
MAX_MEMORY_RETRIES: int = TABLE["max_memory_retries"]
DEFAULT_MAX_CONTAINER_RETRIES: int = TABLE["max_container_retries"]
OUT_OF_MEMORY_REASONS: tuple[str, ...] = tuple(TABLE["out_of_memory_reasons"])
CONTAINER_RETRY_REASONS: tuple[str, ...] = (
    *TABLE["container_retry_reasons"],
    WORKER_START_ERROR,
)
OPERATOR_CANCEL_REASONS: tuple[str, ...] = tuple(TABLE["operator_cancel_reasons"])


@dataclass(frozen=True)
class Rung:
    """One step of the memory ladder: the machine size in GiB, the memory the job asks
    for (the machine's less what ECS keeps) and the vCPUs."""

    gib: float
    memory_mib: int
    vcpus: int = 1

    @classmethod
    def for_machine(cls, gib: float, vcpus: int = 1) -> Rung:
        """A rung for a machine of ``gib`` GiB, leaving ECS its share of every GiB."""
        return cls(gib, int(round(gib * (1024 - ECS_RESERVED_MIB_PER_GIB))), vcpus)

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 1024 * 1024

    @property
    def label(self) -> str:
        value = int(self.gib) if float(self.gib).is_integer() else self.gib
        return f"{value}G"


DEFAULT_LADDER = tuple(
    Rung(rung["gib"], rung["memory_mib"], rung["vcpus"]) for rung in TABLE["rungs"]
)


def format_ladder(ladder: Sequence[Rung]) -> str:
    """The ``--ladder`` text of ``ladder``: ``2,8:2,16:2,64:8``."""
    return ",".join(
        rung.label[:-1] + (f":{rung.vcpus}" if rung.vcpus != 1 else "") for rung in ladder
    )


def parse_ladder(text: str) -> tuple[Rung, ...]:
    """``"2,8:2,16:2,64:8"`` -> machines of 2, 8, 16 and 64 GiB with 1, 2, 2 and 8 vCPUs.

    Sizes are GiB, strictly increasing and positive; ``:N`` gives the vCPUs (default 1).
    Each rung asks for the machine's memory less what ECS keeps.
    """
    rungs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        size, _, cpus = part.partition(":")
        try:
            rung = Rung.for_machine(float(size), int(cpus) if cpus else 1)
        except ValueError:
            raise ValueError(
                f"memory ladder {text!r}: expected GiB sizes with optional vCPUs, "
                "like 2,8:2,16:2,64:8"
            ) from None
        rungs.append(rung)
    if not rungs:
        raise ValueError("the memory ladder is empty")
    sizes = [r.gib for r in rungs]
    if any(s <= 0 for s in sizes) or any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(f"memory ladder {text!r}: sizes must be positive and increasing")
    if any(r.vcpus < 1 for r in rungs):
        raise ValueError(f"memory ladder {text!r}: vCPUs must be at least 1")
    return tuple(rungs)


class Kind(enum.Enum):
    SUCCESS = "success"
    MEMORY = "memory"
    CONTAINER_FAULT = "container-fault"
    CANCELLED = "cancelled"
    ERROR = "error"


class Action(enum.Enum):
    DONE = "done"
    RETRY_MORE_MEMORY = "retry-more-memory"
    RETRY_SAME_RUNG = "retry-same-rung"
    TERMINATED = "terminated"
    FAILED = "failed"

    @property
    def is_retry(self) -> bool:
        return self in (Action.RETRY_MORE_MEMORY, Action.RETRY_SAME_RUNG)


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: an exit code (``None`` if the process gave none), the
    container's reason and the job's status reason.

    A process killed by signal N has exit code 128+N, as the container runtime reports it.
    """

    exit_code: int | None
    reason: str = ""
    status_reason: str = ""


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


def _starts_with(reason: str, prefixes: Iterable[str]) -> str | None:
    for prefix in prefixes:
        if reason.startswith(prefix):
            return prefix
    return None


def classify(outcome: Outcome) -> tuple[Kind, int | None, str]:
    """The kind of an outcome, the exit code to report and its name."""
    code = outcome.exit_code
    reason, status = outcome.reason.strip(), outcome.status_reason.strip()
    if code == ExitCode.SUCCESS:
        return Kind.SUCCESS, 0, ExitCode.SUCCESS.name
    if _starts_with(status, OPERATOR_CANCEL_REASONS):
        return Kind.CANCELLED, code, "OPERATOR_CANCELLED"
    if code in MEMORY_CODES:
        return Kind.MEMORY, code, exit_name(code)
    if _starts_with(reason, OUT_OF_MEMORY_REASONS):
        code = int(ExitCode.CONTAINER_MEMORY_ERROR)
        return Kind.MEMORY, code, exit_name(code)
    prefix = _starts_with(reason, CONTAINER_RETRY_REASONS)
    if prefix:
        return Kind.CONTAINER_FAULT, code, prefix
    return Kind.ERROR, code, exit_name(code)


def decide(
    outcome: Outcome,
    rung_index: int,
    rungs: int,
    container_faults: int,
    max_container_retries: int = DEFAULT_MAX_CONTAINER_RETRIES,
) -> Decision:
    """What to do after an attempt on rung ``rung_index`` (of ``rungs``) ended with ``outcome``.

    ``container_faults`` counts the dataset's earlier attempts ended by a container fault;
    ``rung_index`` is also the number of memory retries so far.
    """
    kind, code, name = classify(outcome)
    reason = "; ".join(r for r in (outcome.reason.strip(), outcome.status_reason.strip()) if r)
    if kind is Kind.SUCCESS:
        return Decision(Action.DONE, kind, code, name)
    if kind is Kind.CANCELLED:
        return Decision(Action.TERMINATED, kind, code, name, reason)
    if kind is Kind.MEMORY:
        if rung_index + 1 < rungs and rung_index < MAX_MEMORY_RETRIES:
            return Decision(Action.RETRY_MORE_MEMORY, kind, code, name, "memory: next rung")
        return Decision(Action.FAILED, kind, code, name, "out of memory on the largest rung")
    if kind is Kind.CONTAINER_FAULT:
        if container_faults < max_container_retries:
            return Decision(Action.RETRY_SAME_RUNG, kind, code, name, reason)
        tries = container_faults + 1
        return Decision(Action.FAILED, kind, code, name, f"container faults in {tries} tries")
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


@dataclass
class DatasetRun:
    """A dataset's way up the ladder: its attempts and the decision after the last one."""

    dataset: str
    ladder: Sequence[Rung] = DEFAULT_LADDER
    max_container_retries: int = DEFAULT_MAX_CONTAINER_RETRIES
    rung_index: int = 0
    container_faults: int = 0
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
            self.container_faults,
            self.max_container_retries,
        )
        if decision.kind is Kind.CONTAINER_FAULT:
            self.container_faults += 1
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

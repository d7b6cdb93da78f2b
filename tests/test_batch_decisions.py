"""The retry table of caldp-batch, checked with every exit code of the contract."""

from __future__ import annotations

import signal

import pytest

from caldp.batch.aws import load_job_definition
from caldp.batch.decisions import (
    DEFAULT_LADDER,
    DEFAULT_MAX_CONTAINER_RETRIES,
    MAX_MEMORY_RETRIES,
    Action,
    Attempt,
    DatasetRun,
    Kind,
    Outcome,
    Rung,
    decide,
    exit_name,
    format_ladder,
    format_summary,
    parse_ladder,
)
from caldp.exit_codes import ExitCode

# 31-34 are the memory errors the orchestrator retries on a
# larger machine; every other failure is final.
CONTRACT_MEMORY_CODES = {31, 32, 33, 34}
CONTRACT_CODES = {0, 1, 2, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33, 34, 40, 41, 143}
LAST = len(DEFAULT_LADDER) - 1


CALDP_ADDED_CODES = {29, 30}  # WORK_FOLDER_ERROR, DATASET_BUSY: numbers the contract leaves free


def test_the_enum_is_the_contract_list():
    assert {int(c) for c in ExitCode} == CONTRACT_CODES | CALDP_ADDED_CODES


def test_default_ladder_is_calclouds():
    """CALCLOUD's rungs: 2, 8, 16, 64 GiB machines asking 1792, 7168, 14336, 57344 MiB
    (128 MiB of every GiB left to ECS) with 1, 2, 2, 8 vCPUs."""
    assert [r.gib for r in DEFAULT_LADDER] == [2, 8, 16, 64]
    assert [r.memory_mib for r in DEFAULT_LADDER] == [1792, 7168, 14336, 57344]
    assert [r.vcpus for r in DEFAULT_LADDER] == [1, 2, 2, 8]
    assert [r.label for r in DEFAULT_LADDER] == ["2G", "8G", "16G", "64G"]
    assert all(r == Rung.for_machine(r.gib, r.vcpus) for r in DEFAULT_LADDER)
    assert (MAX_MEMORY_RETRIES, DEFAULT_MAX_CONTAINER_RETRIES) == (4, 4)


def test_the_packaged_job_definition_asks_for_the_first_rung():
    definition = load_job_definition("caldp:test", {})
    requirements = {
        r["type"]: r["value"] for r in definition["containerProperties"]["resourceRequirements"]
    }
    first = DEFAULT_LADDER[0]
    assert requirements == {"VCPU": str(first.vcpus), "MEMORY": str(first.memory_mib)}


@pytest.mark.parametrize("code", sorted(CONTRACT_CODES))
@pytest.mark.parametrize("rung", range(len(DEFAULT_LADDER)))
def test_every_exit_code_on_every_rung(code, rung):
    d = decide(Outcome(code), rung, len(DEFAULT_LADDER), container_faults=0)
    assert d.exit_code == code
    assert d.name == ExitCode(code).name
    if code == 0:
        assert (d.action, d.kind) == (Action.DONE, Kind.SUCCESS)
    elif code in CONTRACT_MEMORY_CODES:
        assert d.kind is Kind.MEMORY
        expected = Action.FAILED if rung == LAST else Action.RETRY_MORE_MEMORY
        assert d.action is expected
    else:
        assert (d.action, d.kind) == (Action.FAILED, Kind.ERROR)
        assert d.why == ExitCode(code).description


@pytest.mark.parametrize("code", sorted(CONTRACT_CODES - CONTRACT_MEMORY_CODES - {0}))
@pytest.mark.parametrize(
    "reason",
    [
        "CannotStartContainerError: Error response from daemon: cgroup failure",
        "CannotPullContainerError: pull rate limit",
        "Task failed to start",
        "Essential container in task exited",
    ],
)
def test_reasons_calcloud_does_not_retry_leave_a_failure(code, reason):
    d = decide(Outcome(code, reason), 0, 4, 0)
    assert (d.action, d.exit_code) == (Action.FAILED, code)
    assert decide(Outcome(None, reason), 0, 4, 0).action is Action.FAILED


@pytest.mark.parametrize(
    "reason",
    [
        "OutOfMemoryError: Container killed due to memory usage",
        "OutOfMemoryError: Container killed",
    ],
)
def test_container_out_of_memory_is_33_and_climbs(reason):
    first = decide(Outcome(137, reason), 0, 4, 0)
    assert (first.action, first.exit_code, first.name) == (
        Action.RETRY_MORE_MEMORY,
        33,
        "CONTAINER_MEMORY_ERROR",
    )
    last = decide(Outcome(None, reason), 3, 4, 0)
    assert (last.action, last.exit_code) == (Action.FAILED, 33)


def test_out_of_memory_counts_only_as_the_container_reason():
    # CALCLOUD reads the container's reason from its start; the job's status reason
    # ("Essential container in task exited") never makes a memory error.
    d = decide(Outcome(137, "", "OutOfMemoryError: Container killed"), 0, 4, 0)
    assert (d.action, d.name) == (Action.FAILED, "SIGKILL")
    d = decide(Outcome(137, "Task: OutOfMemoryError: Container killed"), 0, 4, 0)
    assert d.action is Action.FAILED


def test_memory_retries_stop_at_calclouds_limit_even_on_a_longer_ladder():
    ladder = parse_ladder("1,2,3,4,5,6,7")
    run = DatasetRun("j8bt05njq", ladder)
    while not run.finished:
        run.record(Attempt(run.rung, Outcome(31)))
    assert len(run.attempts) == 1 + MAX_MEMORY_RETRIES
    assert run.decision.action is Action.FAILED


def test_killed_without_a_memory_reason_is_an_error_named_by_signal():
    d = decide(Outcome(128 + signal.SIGKILL, "", "Job attempt duration exceeded timeout"), 0, 4, 0)
    assert (d.action, d.kind, d.exit_code, d.name) == (Action.FAILED, Kind.ERROR, 137, "SIGKILL")
    assert "timeout" in d.why


@pytest.mark.parametrize("code", [None, 0, 1, 23, 31, 137, 143])
def test_an_operator_cancel_is_terminated_whatever_the_exit_code(code):
    d = decide(Outcome(code, "", "Operator cancelled: by jdoe"), 0, 4, 0)
    if code == 0:
        assert d.action is Action.DONE
        return
    assert (d.action, d.kind, d.exit_code, d.name) == (
        Action.TERMINATED,
        Kind.CANCELLED,
        code,
        "OPERATOR_CANCELLED",
    )
    assert not d.action.is_retry and "Operator cancelled" in d.why


@pytest.mark.parametrize("code", [None, 0 + 1, 23, 143])
@pytest.mark.parametrize(
    "reason",
    [
        "CannotInspectContainerError: Could not transition to inspecting",
        "DockerTimeoutError: Could not transition to started; timed out after waiting 4m0s",
        "WorkerStartError: [Errno 2] No such file or directory",
    ],
)
def test_container_faults_retry_on_the_same_rung_whatever_the_exit_code(code, reason):
    outcome = Outcome(code, reason)
    for earlier in range(4):
        d = decide(outcome, 1, 4, container_faults=earlier)
        assert (d.action, d.kind) == (Action.RETRY_SAME_RUNG, Kind.CONTAINER_FAULT)
    final = decide(outcome, 1, 4, container_faults=4)
    assert (final.action, final.kind, final.exit_code) == (
        Action.FAILED,
        Kind.CONTAINER_FAULT,
        code,
    )
    assert "5 tries" in final.why
    assert decide(outcome, 1, 4, container_faults=1, max_container_retries=1).action is (
        Action.FAILED
    )


def test_no_exit_code_and_no_known_reason_is_an_error():
    d = decide(Outcome(None, ""), 0, 4, 0)
    assert (d.action, d.exit_code, d.name) == (Action.FAILED, None, "NO_EXIT_CODE")
    d = decide(Outcome(None, "", "Host EC2 (instance i-0123) terminated."), 0, 4, 0)
    assert d.action is Action.FAILED and "Host EC2" in d.why


@pytest.mark.parametrize("code", sorted(CALDP_ADDED_CODES))
def test_caldps_added_codes_are_final_failures(code):
    d = decide(Outcome(code), 0, 4, 0)
    assert (d.action, d.exit_code) == (Action.FAILED, code)
    assert d.name == ExitCode(code).name


@pytest.mark.parametrize("code", [3, 20, 35, 99, 127, 255])
def test_codes_outside_the_contract_are_errors(code):
    d = decide(Outcome(code), 0, 4, 0)
    assert (d.action, d.exit_code) == (Action.FAILED, code)
    assert d.name == exit_name(code)
    assert d.name not in ExitCode.__members__


def test_exit_names():
    assert exit_name(31) == "SUBPROCESS_MEMORY_ERROR"
    assert exit_name(128 + 15) == "TERMINATED"  # caldp's own name for 143
    assert exit_name(128 + 9) == "SIGKILL"
    assert exit_name(None) == "NO_EXIT_CODE"
    assert exit_name(77) == "UNKNOWN"


def test_parse_ladder():
    assert parse_ladder("2,8:2,16:2,64:8") == DEFAULT_LADDER
    assert parse_ladder(format_ladder(DEFAULT_LADDER)) == DEFAULT_LADDER
    assert parse_ladder("0.5, 1") == (Rung(0.5, 448, 1), Rung(1, 896, 1))
    assert Rung.for_machine(0.5).label == "0.5G"
    for bad in ("", "8,2", "2,2", "0,1", "two", "2:x", "2:0"):
        with pytest.raises(ValueError):
            parse_ladder(bad)


def test_a_dataset_climbs_the_ladder_and_stops_at_the_top():
    run = DatasetRun("j8bt05njq")
    seen = []
    while not run.finished:
        seen.append(run.rung.label)
        run.record(Attempt(run.rung, Outcome(32), wall_seconds=1.5, max_rss_kb=2048))
    assert seen == ["2G", "8G", "16G", "64G"]
    assert (run.exit_code, run.decision.name, run.succeeded) == (32, "CALDP_MEMORY_ERROR", False)
    assert run.wall_seconds == pytest.approx(6.0)
    assert run.max_rss_kb == 2048


def test_container_fault_then_memory_then_success():
    run = DatasetRun("ldfd01010", max_container_retries=1)
    run.record(Attempt(run.rung, Outcome(None, "DockerTimeoutError: x")))
    assert run.rung.label == "2G" and not run.finished
    run.record(Attempt(run.rung, Outcome(34)))
    assert run.rung.label == "8G" and not run.finished
    run.record(Attempt(run.rung, Outcome(0), max_rss_kb=100, wall_seconds=2.0))
    assert run.succeeded and run.exit_code == 0
    assert [a.rung.label for a in run.attempts] == ["2G", "2G", "8G"]


def test_summary_table():
    ok = DatasetRun("j8bt05njq")
    ok.record(Attempt(ok.rung, Outcome(0), wall_seconds=12.25, max_rss_kb=300 * 1024))
    bad = DatasetRun("acs_8ph_01")
    bad.record(Attempt(bad.rung, Outcome(31), wall_seconds=1.0, max_rss_kb=1024))
    bad.record(Attempt(bad.rung, Outcome(40), wall_seconds=2.0, max_rss_kb=4096))
    text = format_summary([ok, bad])
    lines = text.splitlines()
    assert lines[0].split() == [
        "dataset",
        "exit",
        "name",
        "attempts",
        "wall",
        "s",
        "max",
        "RSS",
        "MB",
        "note",
    ]
    assert lines[2].split() == ["j8bt05njq", "0", "SUCCESS", "2G", "12.2", "300.0"]
    assert lines[3].split()[:7] == ["acs_8ph_01", "40", "SVM_ERROR", "2G", "8G", "3.0", "4.0"]
    assert "runsinglehap" in lines[3]
    assert lines[-1] == "1 of 2 datasets succeeded"

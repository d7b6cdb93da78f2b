"""AWS Batch: the job definition, submission on the memory ladder, and following jobs.

Each rung of the ladder has its own job queue (whose compute environment has
machines of that size); a job runs exactly the contract's command::

    ["caldp-process", "<ds>", "s3://<bucket>/inputs", "s3://<bucket>/outputs/<ds>",
     "caldp-config-aws"]

built from ``Ref::`` parameters of the job definition, with the rung's memory and
vCPUs given as ``resourceRequirements`` overrides.  The job is named after the
dataset, as CALCLOUD names it and as its dashboard parses it.  A job an operator
cancelled ends the dataset in ``messages/terminated-<ds>``, as CALCLOUD ends it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from caldp.batch.decisions import (
    DEFAULT_LADDER,
    DEFAULT_MAX_CONTAINER_RETRIES,
    Action,
    Attempt,
    DatasetRun,
    Outcome,
    Rung,
)
from caldp.locks import batch_job_of

log = logging.getLogger("caldp.batch.aws")

DESCRIBE_LIMIT = 100  # DescribeJobs takes at most 100 job ids
FINAL_STATES = ("SUCCEEDED", "FAILED")
MISSING_POLLS = 10  # DescribeJobs may lag SubmitJob: a job is lost after this many misses


def load_job_definition(
    image: str, environment: Mapping[str, str], name: str | None = None
) -> dict[str, Any]:
    """The packaged job definition with ``image`` and the job environment filled in.

    The variables of the packaged definition's environment that are missing or empty in
    ``environment`` are left out, so that the image's own values (``CSYS_VER`` is set by
    the Dockerfile) apply.
    """
    text = resources.files("caldp.batch").joinpath("job_definition.json").read_text()
    definition = json.loads(text)
    if name:
        definition["jobDefinitionName"] = name
    props = definition["containerProperties"]
    props["image"] = image
    props["environment"] = [
        {"name": var["name"], "value": environment[var["name"]]}
        for var in props["environment"]
        if environment.get(var["name"])
    ]
    return definition


def register_job_definition(
    client: Any, image: str, environment: Mapping[str, str], name: str | None = None
) -> str:
    """Register the job definition; return its ARN (name:revision)."""
    definition = load_job_definition(image, environment, name)
    response = client.register_job_definition(**definition)
    log.info("registered job definition %s", response["jobDefinitionArn"])
    return response["jobDefinitionArn"]


def image_tag(image: str) -> str:
    """The tag of an image reference (``stsci/hst-pipeline:CALDP_x`` -> ``CALDP_x``), as the
    Dockerfile sets ``CSYS_VER``; ``""`` when the reference has no tag."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def job_parameters(dataset: str, bucket: str, config: str = "caldp-config-aws") -> dict[str, str]:
    """The ``Ref::`` values that make the contract's command for ``dataset``."""
    return {
        "dataset": dataset,
        "input_uri": f"s3://{bucket}/inputs",
        "output_uri": f"s3://{bucket}/outputs/{dataset}",
        "config": config,
    }


def resource_overrides(rung: Rung) -> dict[str, Any]:
    return {
        "resourceRequirements": [
            {"type": "VCPU", "value": str(rung.vcpus)},
            {"type": "MEMORY", "value": str(rung.memory_mib)},
        ]
    }


def job_name(dataset: str) -> str:
    """The Batch job name of a dataset's jobs: the dataset name itself (every caldp
    dataset name is a valid job name: letters, digits, ``-`` and ``_``)."""
    return dataset


def default_queues(prefix: str, ladder: Sequence[Rung]) -> tuple[str, ...]:
    """One queue per rung: ``<prefix>-2g``, ``<prefix>-8g``, ..."""
    return tuple(f"{prefix}-{rung.label.lower()}" for rung in ladder)


def outcome_from_job(job: Mapping[str, Any]) -> Outcome:
    """The outcome of a finished job from its DescribeJobs entry: the container's exit
    code and reason (of the job, else of its last attempt) and the job's status reason."""
    if job.get("status") == "SUCCEEDED":
        return Outcome(0)
    container = job.get("container") or {}
    attempts = job.get("attempts") or []
    last = (attempts[-1].get("container") or {}) if attempts else {}
    code = container.get("exitCode", last.get("exitCode"))
    reason = container.get("reason") or last.get("reason") or ""
    return Outcome(None if code is None else int(code), reason, job.get("statusReason") or "")


def _seconds(job: Mapping[str, Any]) -> float | None:
    started, stopped = job.get("startedAt"), job.get("stoppedAt")
    if started and stopped and stopped >= started:
        return (stopped - started) / 1000.0
    return None


@dataclass(frozen=True)
class BatchSettings:
    bucket: str
    queues: Sequence[str]
    job_definition: str = "caldp"
    ladder: Sequence[Rung] = DEFAULT_LADDER
    config: str = "caldp-config-aws"
    poll_seconds: float = 30.0
    max_container_retries: int = DEFAULT_MAX_CONTAINER_RETRIES

    def __post_init__(self) -> None:
        if len(self.queues) != len(self.ladder):
            raise ValueError(
                f"{len(self.queues)} job queues for {len(self.ladder)} memory rungs: "
                "give one queue per rung"
            )


SubmitHook = Callable[[DatasetRun, str, str], None]
EndHook = Callable[[DatasetRun], None]

# The state messages a dataset can have (caldp's and CALCLOUD's), removed when a
# cancelled dataset is marked terminated: a dataset has one state at a time.
STATE_MESSAGES = (
    "submit-{ds}",
    "placed-{ds}",
    "processing-{ds}",
    "processed-{ds}.trigger",
    "error-{ds}",
    "rescue-{ds}",
    "cancel-{ds}",
    "clean-{ds}",
)


def mark_terminated(s3: Any, bucket: str, dataset: str) -> str:
    """End a cancelled dataset as CALCLOUD does: its other state messages removed,
    ``messages/terminated-<ds>`` written.  Returns the new message's key."""
    for state in STATE_MESSAGES:
        s3.delete_object(Bucket=bucket, Key=f"messages/{state.format(ds=dataset)}")
    key = f"messages/terminated-{dataset}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"")
    log.warning("%s: cancelled by an operator: s3://%s/%s", dataset, bucket, key)
    return key


def release_stale_lock(s3: Any, bucket: str, run: DatasetRun) -> bool:
    """Before a retry: remove ``messages/processing-<ds>`` if the attempt that just
    ended wrote it.  Returns whether it was removed.

    caldp-process holds ``processing-<ds>`` as its lock on the output and removes it
    with its final message.  An attempt that AWS Batch killed (out of memory, a Docker
    fault) never does, and the retry, a new job, would be refused as DATASET_BUSY.
    That job has ended, so its lock is stale; one written by any other run is left,
    and the retry is refused as it should be.
    """
    key = f"messages/processing-{run.dataset}"
    ended = run.attempts[-1].job_id if run.attempts else ""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if _error_code(exc) in ("NoSuchKey", "404"):
            return False
        raise
    writer = batch_job_of(body.decode("utf-8", "replace"))
    if not ended or writer != ended:
        return False
    s3.delete_object(Bucket=bucket, Key=key)
    log.warning(
        "%s: removed s3://%s/%s, left by job %s, which ended without removing it",
        run.dataset,
        bucket,
        key,
        ended,
    )
    return True


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def submit(client: Any, run: DatasetRun, settings: BatchSettings) -> tuple[str, str]:
    """Submit ``run``'s next attempt on its current rung; return (job id, queue)."""
    rung = run.rung
    queue = settings.queues[run.rung_index]
    response = client.submit_job(
        jobName=job_name(run.dataset),
        jobQueue=queue,
        jobDefinition=settings.job_definition,
        parameters=job_parameters(run.dataset, settings.bucket, settings.config),
        containerOverrides=resource_overrides(rung),
    )
    job_id = response["jobId"]
    log.info("%s: submitted job %s to %s (%s)", run.dataset, job_id, queue, rung.label)
    return job_id, queue


def run_on_batch(
    datasets: Sequence[str],
    client: Any,
    settings: BatchSettings,
    on_submitted: SubmitHook | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_terminated: EndHook | None = None,
    before_retry: EndHook | None = None,
) -> list[DatasetRun]:
    """Submit every dataset on the first rung, follow the jobs, resubmit by the retry table.

    Returns one :class:`DatasetRun` per dataset, in the order given.
    ``on_submitted(run, job_id, queue)`` is called after each submission, and
    ``on_terminated(run)`` when an operator cancelled a dataset's job, and
    ``before_retry(run)`` before a dataset's next attempt is submitted.
    """
    runs = [DatasetRun(ds, settings.ladder, settings.max_container_retries) for ds in datasets]
    pending: dict[str, DatasetRun] = {}

    def launch(run: DatasetRun) -> None:
        job_id, queue = submit(client, run, settings)
        pending[job_id] = run
        if on_submitted is not None:
            on_submitted(run, job_id, queue)

    for run in runs:
        launch(run)
    progress = ""
    misses: dict[str, int] = {}
    while pending:
        ids = list(pending)
        seen: set[str] = set()
        states: dict[str, int] = {}
        for start in range(0, len(ids), DESCRIBE_LIMIT):
            chunk = ids[start : start + DESCRIBE_LIMIT]
            for job in client.describe_jobs(jobs=chunk)["jobs"]:
                job_id = job["jobId"]
                seen.add(job_id)
                status = str(job.get("status"))
                states[status] = states.get(status, 0) + 1
                if job_id not in pending or status not in FINAL_STATES:
                    continue
                run = pending.pop(job_id)
                _finish(run, job, job_id)
                if run.decision is not None and run.decision.action.is_retry:
                    if before_retry is not None:
                        before_retry(run)
                    launch(run)
                elif run.decision is not None and run.decision.action is Action.TERMINATED:
                    if on_terminated is not None:
                        on_terminated(run)
        for job_id in [i for i in ids if i not in seen and i in pending]:
            misses[job_id] = misses.get(job_id, 0) + 1
            if misses[job_id] < MISSING_POLLS:
                continue
            run = pending.pop(job_id)
            log.error("%s: job %s is not known to AWS Batch", run.dataset, job_id)
            _finish(run, {"jobId": job_id, "status": "FAILED"}, job_id, "job not found")
        now = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        if now != progress:
            done = sum(1 for r in runs if r.finished)
            log.info("%d of %d datasets finished; jobs: %s", done, len(runs), now or "none")
            progress = now
        if pending:
            sleep(settings.poll_seconds)
    return runs


def _finish(run: DatasetRun, job: Mapping[str, Any], job_id: str, reason: str = "") -> None:
    outcome = outcome_from_job(job)
    if reason and not outcome.reason:
        outcome = Outcome(outcome.exit_code, reason)
    rung = run.rung
    decision = run.record(Attempt(rung, outcome, wall_seconds=_seconds(job), job_id=job_id))
    level = logging.INFO if decision.action in (Action.DONE,) else logging.WARNING
    log.log(
        level,
        "%s: job %s on %s ended: exit %s %s -> %s%s",
        run.dataset,
        job_id,
        rung.label,
        "-" if decision.exit_code is None else decision.exit_code,
        decision.name,
        decision.action.value,
        f" ({decision.why})" if decision.why else "",
    )

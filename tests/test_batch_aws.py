"""caldp.batch.aws: AWS Batch runs against the Batch API of a real moto server on
127.0.0.1 (how moto plays AWS Batch: :mod:`tests.support.batch_fixtures`)."""

from __future__ import annotations

import re

import pytest

from caldp import locks
from caldp.batch import aws
from caldp.batch.decisions import DEFAULT_LADDER, Action, parse_ladder
from tests.support.batch_fixtures import (
    BUCKET,
    CANCELLED,
    NO_INSPECT,
    NO_START,
    OOM,
    QUEUES,
    RuntimeReasons,
    contract_command,
    jobs_in,
    lock_text,
    reset,
    substitute,
)

boto3 = pytest.importorskip("boto3")


def settings(**kw) -> aws.BatchSettings:
    return aws.BatchSettings(bucket=BUCKET, queues=QUEUES, poll_seconds=0.01, **kw)


def test_job_definition_registered(batch):
    env = {"CRDSBUCKET": "crds-refs", "CSYS_VER": "stsci/hst-pipeline:X", "AWSDPVER": "caldp-9"}
    arn = aws.register_job_definition(batch, "123.dkr.ecr.us-east-1.amazonaws.com/caldp:v1", env)
    (jd,) = batch.describe_job_definitions(jobDefinitions=[arn])["jobDefinitions"]
    props = jd["containerProperties"]
    assert jd["jobDefinitionName"] == "caldp" and jd["type"] == "container"
    assert props["image"] == "123.dkr.ecr.us-east-1.amazonaws.com/caldp:v1"
    assert props["command"] == [
        "caldp-process",
        "Ref::dataset",
        "Ref::input_uri",
        "Ref::output_uri",
        "Ref::config",
    ]
    assert {r["type"]: r["value"] for r in props["resourceRequirements"]} == {
        "VCPU": "1",
        "MEMORY": "1792",
    }
    # AWSYSVER was not given: left out, so the image's own value is not masked.
    assert {e["name"]: e["value"] for e in props["environment"]} == env
    parameters = {**jd["parameters"], **aws.job_parameters("j8bt05njq", BUCKET)}
    assert substitute(props["command"], parameters) == contract_command("j8bt05njq")
    assert jd["retryStrategy"] == {"attempts": 1}  # caldp-batch does the retrying


def test_all_succeed_on_the_first_rung(batch):
    datasets = ["j8bt05njq", "ldfd01010", "acs_8ph_01"]
    runs = aws.run_on_batch(datasets, batch, settings())
    assert [r.dataset for r in runs] == datasets
    assert all(r.succeeded and r.exit_code == 0 for r in runs)
    assert all(len(r.attempts) == 1 for r in runs)
    summaries = jobs_in(batch, "caldp-2g")
    assert [j["jobName"] for j in summaries] == [
        "acs_8ph_01",
        "j8bt05njq",
        "ldfd01010",
    ]
    assert all(j["status"] == "SUCCEEDED" for j in summaries)
    described = batch.describe_jobs(jobs=[r.attempts[0].job_id for r in runs])["jobs"]
    for job in described:
        ds = job["parameters"]["dataset"]
        assert substitute(job["container"]["command"], job["parameters"]) == contract_command(ds)
        env = {e["name"]: e["value"] for e in job["container"]["environment"]}
        assert env["CRDSBUCKET"] == "crds-refs"


def test_failures_climb_retry_or_stop(failing_batch):
    """OOM kills climb the ladder, Docker faults retry on the rung, the rest stop."""
    client = RuntimeReasons(failing_batch)
    container_reasons = {"j8bt05njq": OOM, "ldfd01010": NO_INSPECT, "o4er06llq": NO_START}
    submitted = []

    def on_submitted(run, job_id, queue):
        submitted.append((run.dataset, queue))
        if run.dataset in container_reasons:
            client.reasons[job_id] = container_reasons[run.dataset]

    runs = aws.run_on_batch(
        ["j8bt05njq", "ldfd01010", "o4er06llq", "octka7jeq"],
        client,
        settings(max_container_retries=2),
        on_submitted=on_submitted,
    )
    oom, fault, nostart, other = runs
    assert [q for ds, q in submitted if ds == "j8bt05njq"] == list(QUEUES)
    assert len(oom.attempts) == len(QUEUES)
    assert (oom.decision.action, oom.exit_code, oom.decision.name) == (
        Action.FAILED,
        33,
        "CONTAINER_MEMORY_ERROR",
    )
    assert [q for ds, q in submitted if ds == "ldfd01010"] == ["caldp-2g"] * 3
    assert len(fault.attempts) == 3
    assert fault.decision.name == "CannotInspectContainer" and fault.exit_code is None
    # CALCLOUD does not retry a container that could not start.
    assert len(nostart.attempts) == 1 and nostart.decision.action is Action.FAILED
    assert len(other.attempts) == 1 and other.decision.name == "NO_EXIT_CODE"
    # What moto holds agrees: one job per attempt, in the queue of its rung, each
    # named after its dataset.
    assert [j["jobName"] for j in jobs_in(client, "caldp-2g")] == [
        "j8bt05njq",
        "ldfd01010",
        "ldfd01010",
        "ldfd01010",
        "o4er06llq",
        "octka7jeq",
    ]
    for queue in QUEUES[1:]:
        assert [j["jobName"] for j in jobs_in(client, queue)] == ["j8bt05njq"]
    assert len(submitted) == 4 + 3 + 1 + 1
    assert all(j["status"] == "FAILED" for q in QUEUES for j in jobs_in(client, q))


def test_an_operator_cancel_ends_terminated_with_its_message(failing_batch):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for name in ("processing-j8bt05njq", "error-j8bt05njq", "submit-ldfd01010"):
        s3.put_object(Bucket=BUCKET, Key=f"messages/{name}", Body=b"")

    def on_submitted(run, job_id, queue):
        if run.dataset == "j8bt05njq":
            failing_batch.terminate_job(jobId=job_id, reason=CANCELLED)

    ended = []
    runs = aws.run_on_batch(
        ["j8bt05njq", "ldfd01010"],
        failing_batch,
        settings(),
        on_submitted=on_submitted,
        on_terminated=lambda run: ended.append(aws.mark_terminated(s3, BUCKET, run.dataset)),
    )
    cancelled, failed = runs
    assert cancelled.decision.action is Action.TERMINATED and len(cancelled.attempts) == 1
    assert cancelled.decision.name == "OPERATOR_CANCELLED"
    assert failed.decision.action is Action.FAILED
    assert ended == ["messages/terminated-j8bt05njq"]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="messages/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        "messages/submit-ldfd01010",
        "messages/terminated-j8bt05njq",
    ]


def test_a_killed_attempts_lock_is_removed_before_its_retry(failing_batch):
    """An attempt killed for memory leaves ``processing-<ds>`` (caldp-process's lock on
    the output, which it had no chance to remove): the retry, a new job, would be
    refused as DATASET_BUSY.  The lock the ended job wrote goes before the retry; one
    written by another run stays."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    client = RuntimeReasons(failing_batch)
    key = "messages/processing-{}".format
    found_at_submission = []

    def on_submitted(run, job_id, queue):
        client.reasons[job_id] = OOM
        try:
            body = s3.get_object(Bucket=BUCKET, Key=key(run.dataset))["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            body = None
        found_at_submission.append((run.dataset, queue, body))
        if run.dataset == "j8bt05njq":  # the job's caldp-process takes its lock
            s3.put_object(Bucket=BUCKET, Key=key(run.dataset), Body=lock_text(job_id))

    other = lock_text("another-job")
    s3.put_object(Bucket=BUCKET, Key=key("ldfd01010"), Body=other)
    runs = aws.run_on_batch(
        ["j8bt05njq", "ldfd01010"],
        client,
        aws.BatchSettings(BUCKET, QUEUES[:2], ladder=DEFAULT_LADDER[:2], poll_seconds=0.01),
        on_submitted=on_submitted,
        before_retry=lambda run: aws.release_stale_lock(s3, BUCKET, run),
    )
    killed, busy = runs
    assert len(killed.attempts) == 2
    assert [(ds, q, b) for ds, q, b in found_at_submission if ds == "j8bt05njq"] == [
        ("j8bt05njq", "caldp-2g", None),
        ("j8bt05njq", "caldp-8g", None),  # the first attempt's lock was removed
    ]
    # the last attempt's own lock: nothing retries it, caldp-batch leaves it
    last = s3.get_object(Bucket=BUCKET, Key=key("j8bt05njq"))["Body"].read().decode()
    assert locks.batch_job_of(last) == killed.attempts[-1].job_id
    # another run's lock is never removed
    assert len(busy.attempts) == 2
    assert [b for ds, _, b in found_at_submission if ds == "ldfd01010"] == [other.decode()] * 2
    assert s3.get_object(Bucket=BUCKET, Key=key("ldfd01010"))["Body"].read() == other


def test_a_job_that_vanishes_is_reported_after_some_polls(batch, aws_env):
    polls = []
    runs = aws.run_on_batch(
        ["j8bt05njq"],
        batch,
        settings(),
        on_submitted=lambda run, job_id, queue: reset(aws_env),  # moto forgets every job
        sleep=polls.append,
    )
    (run,) = runs
    assert len(run.attempts) == 1 and run.decision.action is Action.FAILED
    assert (run.exit_code, run.decision.why) == (None, "job not found")
    assert len(polls) == aws.MISSING_POLLS - 1  # not given up at the first miss


def test_image_tag():
    assert aws.image_tag("stsci/hst-pipeline:CALDP_20240813_CAL_final") == (
        "CALDP_20240813_CAL_final"
    )
    assert aws.image_tag("registry.example:5000/caldp:v1") == "v1"
    assert aws.image_tag("registry.example:5000/caldp") == ""
    assert aws.image_tag("caldp:v2@sha256:" + "0" * 64) == "v2"


def test_default_queue_names():
    assert aws.default_queues("caldp", DEFAULT_LADDER) == QUEUES
    assert aws.default_queues("hst", parse_ladder("0.5,4")) == ("hst-0.5g", "hst-4g")


@pytest.mark.parametrize(
    "dataset", ["j8bt05njq", "ldfd01010", "acs_8ph_01", "skycell-p2381x06y09", "o4er06llq"]
)
def test_job_names_are_what_calclouds_dashboard_parses(dataset):
    """CALCLOUD's dashboard takes the job name as the dataset name when it is one, else
    the part after the first ``-``; anything else raises "No valid dataset name found"."""
    from caldp.datasets import parse

    name = aws.job_name(dataset)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name)  # AWS Batch's rule for job names
    assert parse(name).name == dataset

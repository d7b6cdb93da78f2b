"""caldp-batch against the AWS Batch API of a real moto server on 127.0.0.1.

moto is told through its config API (``POST /moto-api/config`` with
``{"batch": {"use_docker": false}}``) to run no containers: jobs then end at
once, SUCCEEDED, or FAILED (without exit code) on a server started with
``MOTO_SIMPLE_BATCH_FAIL_AFTER=0``.  A job's reason is set with the Batch API's
own TerminateJob, which sets its status reason, as an operator's cancel does.
The container's own reason (an out-of-memory kill, a Docker fault), which only
the container runtime sets and moto cannot, is added to DescribeJobs by
:class:`RuntimeReasons`.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request

import pytest

from caldp import locks
from caldp.batch import aws
from caldp.batch.cli import main
from caldp.batch.decisions import DEFAULT_LADDER, Action, parse_ladder
from tests.conftest import moto_command, moto_server

boto3 = pytest.importorskip("boto3")

BUCKET = "caldp-test-bucket"
QUEUES = ("caldp-2g", "caldp-8g", "caldp-16g", "caldp-64g")
OOM = "OutOfMemoryError: Container killed due to memory usage"
NO_INSPECT = "CannotInspectContainerError: Could not transition to inspecting; timed out"
NO_START = "CannotStartContainerError: Error response from daemon: failed to create shim task"
CANCELLED = "Operator cancelled: the run is stopped"


class RuntimeReasons:
    """The moto Batch client, with the container runtime's reason added to the
    DescribeJobs entries of chosen jobs (``container.reason``, set by ECS)."""

    def __init__(self, client):
        self.client = client
        self.reasons: dict[str, str] = {}

    def __getattr__(self, name):
        return getattr(self.client, name)

    def describe_jobs(self, jobs):
        response = self.client.describe_jobs(jobs=jobs)
        for job in response["jobs"]:
            if job["jobId"] in self.reasons:
                job.setdefault("container", {})["reason"] = self.reasons[job["jobId"]]
        return response


def contract_command(dataset: str) -> list[str]:
    """What AWS Batch runs."""
    return [
        "caldp-process",
        dataset,
        f"s3://{BUCKET}/inputs",
        f"s3://{BUCKET}/outputs/{dataset}",
        "caldp-config-aws",
    ]


def substitute(command: list[str], parameters: dict[str, str]) -> list[str]:
    """AWS Batch's replacement of ``Ref::name`` placeholders."""
    out = []
    for part in command:
        for name, value in parameters.items():
            part = part.replace(f"Ref::{name}", value)
        out.append(part)
    return out


def moto_config(endpoint: str, config: dict | None = None) -> dict:
    data = None if config is None else json.dumps(config).encode()
    req = urllib.request.Request(
        endpoint + "/moto-api/config", data=data, method="GET" if data is None else "POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else {}


def reset(endpoint: str) -> None:
    req = urllib.request.Request(endpoint + "/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


def make_queues(client) -> None:
    """The operator's infrastructure: a compute environment and one queue per rung."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="caldp-batch-service", AssumeRolePolicyDocument="{}")
    env = client.create_compute_environment(
        computeEnvironmentName="caldp-compute",
        type="UNMANAGED",
        state="ENABLED",
        serviceRole=role["Role"]["Arn"],
    )
    for priority, name in enumerate(QUEUES, 1):
        client.create_job_queue(
            jobQueueName=name,
            state="ENABLED",
            priority=priority,
            computeEnvironmentOrder=[
                {"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}
            ],
        )


def jobs_in(client, queue: str) -> list[dict]:
    found = []
    for status in ("SUCCEEDED", "FAILED"):
        found += client.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
    return sorted(found, key=lambda j: j["jobName"])


@pytest.fixture
def batch(aws_env):
    """A Batch client on the shared moto server, containers off, queues made."""
    previous = moto_config(aws_env)
    moto_config(aws_env, {"batch": {"use_docker": False}})
    client = boto3.client("batch")
    make_queues(client)
    aws.register_job_definition(client, "caldp:test", {"CRDSBUCKET": "crds-refs"})
    yield client
    moto_config(aws_env, {"batch": previous.get("batch", {"use_docker": True})})


@pytest.fixture(scope="module")
def failing_moto(tmp_path_factory):
    """A moto server of its own whose Batch jobs all fail (MOTO_SIMPLE_BATCH_FAIL_AFTER=0)."""
    env = {**os.environ, "MOTO_SIMPLE_BATCH_FAIL_AFTER": "0"}
    log = tmp_path_factory.mktemp("moto-failing") / "moto.log"
    with moto_server(moto_command(), log, env) as url:
        yield url


@pytest.fixture
def failing_batch(aws_env, failing_moto, monkeypatch):
    reset(failing_moto)
    moto_config(failing_moto, {"batch": {"use_docker": False}})
    monkeypatch.setenv("AWS_ENDPOINT_URL", failing_moto)
    client = boto3.client("batch")
    make_queues(client)
    aws.register_job_definition(client, "caldp:test", {"CRDSBUCKET": "crds-refs"})
    return client


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
    assert all(len(r.attempts) == 1 and r.attempts[0].queue == "caldp-2g" for r in runs)
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
    assert [a.queue for a in oom.attempts] == list(QUEUES)
    assert (oom.decision.action, oom.exit_code, oom.decision.name) == (
        Action.FAILED,
        33,
        "CONTAINER_MEMORY_ERROR",
    )
    assert [a.queue for a in fault.attempts] == ["caldp-2g"] * 3
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
    assert [a.queue for a in killed.attempts] == ["caldp-2g", "caldp-8g"]
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


def test_the_cli_removes_a_killed_attempts_lock(failing_batch, monkeypatch, caplog):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    real_client = boto3.client
    bodies = []

    class Killed(RuntimeReasons):
        def submit_job(self, **kwargs):
            try:
                obj = s3.get_object(Bucket=BUCKET, Key="messages/processing-j8bt05njq")
                bodies.append(obj["Body"].read())
            except s3.exceptions.NoSuchKey:
                bodies.append(None)
            response = self.client.submit_job(**kwargs)
            self.reasons[response["jobId"]] = OOM
            s3.put_object(
                Bucket=BUCKET,
                Key="messages/processing-j8bt05njq",
                Body=lock_text(response["jobId"]),
            )
            return response

    def client(name, **kwargs):
        made = real_client(name, **kwargs)
        return Killed(made) if name == "batch" else made

    monkeypatch.setattr(boto3, "client", client)
    rc = main(["--bucket", BUCKET, "--poll", "0.01", "--ladder", "2,8", "j8bt05njq"])
    assert rc == 1
    assert bodies == [None, None]
    assert "ended without removing it" in caplog.text


def lock_text(job_id: str) -> bytes:
    """What caldp-process writes as its lock in AWS Batch job ``job_id``."""
    return locks.s3_lock_text("0123abcd", job_id).encode()


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


def test_cli_registers_submits_and_reports(batch, monkeypatch, capsys):
    monkeypatch.setenv("CRDSBUCKET", "crds-refs-2")
    monkeypatch.setenv("CAL_BASE_IMAGE", "stsci/hst-pipeline:CALDP_20240813_CAL_final")
    monkeypatch.setenv("AWSYSVER", "calcloud-1.2")
    for name in ("CSYS_VER", "AWSDPVER"):
        monkeypatch.delenv(name, raising=False)
    rc = main(["--bucket", BUCKET, "--poll", "0.01", "--register-image", "caldp:v2", "J8BT05NJQ"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[2].split()[:4] == ["j8bt05njq", "0", "SUCCESS", "2G"]
    jd = batch.describe_job_definitions(jobDefinitionName="caldp", status="ACTIVE")
    latest = max(jd["jobDefinitions"], key=lambda d: d["revision"])
    assert latest["containerProperties"]["image"] == "caldp:v2"
    env = {e["name"]: e["value"] for e in latest["containerProperties"]["environment"]}
    assert env == {
        "CRDSBUCKET": "crds-refs-2",
        "CSYS_VER": "CALDP_20240813_CAL_final",
        "AWSDPVER": "caldp-0.1.0",
        "AWSYSVER": "calcloud-1.2",
    }
    (job,) = jobs_in(batch, "caldp-2g")
    assert job["jobDefinition"] == latest["jobDefinitionArn"]


def test_cli_failures_give_status_1(failing_batch, capsys):
    rc = main(["--bucket", BUCKET, "--poll", "0.01", "--ladder", "2,8", "o4er06llq"])
    assert rc == 1
    out = capsys.readouterr().out
    assert out.splitlines()[2].split()[:4] == ["o4er06llq", "-", "NO_EXIT_CODE", "2G"]
    assert out.splitlines()[-1] == "0 of 1 datasets succeeded"


def test_cli_bad_command_lines(batch, capsys):
    assert main(["j8bt05njq"]) == 2  # no bucket
    assert main(["--bucket", BUCKET, "--queues", "a,b", "j8bt05njq"]) == 2  # 2 queues, 4 rungs
    assert main(["--bucket", BUCKET, "u8bt05njq"]) == 2  # WFPC2: not calibrated
    assert main(["--bucket", BUCKET]) == 2
    assert jobs_in(batch, "caldp-2g") == []
    assert "one queue per rung" in capsys.readouterr().err


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

"""Pytest plugin for the caldp-batch tests: AWS Batch on a real moto server on 127.0.0.1,
and local workers that import this checkout.

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
import urllib.request
from pathlib import Path

import pytest

from caldp import locks
from tests.conftest import moto_command, moto_server

REPO = Path(__file__).resolve().parents[2]
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
    import boto3

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


def lock_text(job_id: str) -> bytes:
    """What caldp-process writes as its lock in AWS Batch job ``job_id``."""
    return locks.s3_lock_text("0123abcd", job_id).encode()


def summary_rows(text: str) -> dict[str, list[str]]:
    """caldp-batch's summary table: dataset -> its row's words."""
    lines = text.splitlines()
    return {line.split()[0]: line.split() for line in lines[2:-1]}


@pytest.fixture
def batch(aws_env):
    """A Batch client on the shared moto server, containers off, queues made."""
    boto3 = pytest.importorskip("boto3")
    from caldp.batch import aws

    previous = moto_config(aws_env)
    moto_config(aws_env, {"batch": {"use_docker": False}})
    client = boto3.client("batch")
    make_queues(client)
    aws.register_job_definition(client, "caldp:test", {"CRDSBUCKET": "crds-refs"})
    yield client
    moto_config(aws_env, {"batch": previous.get("batch", {"use_docker": True})})


@pytest.fixture(scope="session")
def failing_moto(tmp_path_factory):
    """A moto server of its own whose Batch jobs all fail (MOTO_SIMPLE_BATCH_FAIL_AFTER=0)."""
    env = {**os.environ, "MOTO_SIMPLE_BATCH_FAIL_AFTER": "0"}
    log = tmp_path_factory.mktemp("moto-failing") / "moto.log"
    with moto_server(moto_command(), log, env) as url:
        yield url


@pytest.fixture
def failing_batch(aws_env, failing_moto, monkeypatch):
    """A Batch client on :func:`failing_moto`, freshly reset, queues made."""
    boto3 = pytest.importorskip("boto3")
    from caldp.batch import aws

    reset(failing_moto)
    moto_config(failing_moto, {"batch": {"use_docker": False}})
    monkeypatch.setenv("AWS_ENDPOINT_URL", failing_moto)
    client = boto3.client("batch")
    make_queues(client)
    aws.register_job_definition(client, "caldp:test", {"CRDSBUCKET": "crds-refs"})
    return client


@pytest.fixture
def importable_caldp(monkeypatch):
    """Workers start ``python -m caldp...``: make this checkout importable for them."""
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + (os.pathsep + path if path else ""))
    monkeypatch.delenv("CALDP_SIMULATE_ERROR", raising=False)

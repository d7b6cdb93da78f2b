"""AWS Batch end to end: caldp-batch submits to moto's Batch, which runs the caldp image.

moto's Batch backend runs each job as a container of the job definition's image
on the local Docker engine; with ``MOTO_DOCKER_NETWORK_MODE=host`` the job's
caldp-process reaches the same moto server's S3 on 127.0.0.1 (the server is
tests/support/moto_batch_server.py: moto's, with the exit codes in DescribeJobs).  Needs
``CALDP_TEST_IMAGE`` (see tests/test_image.py) and a Docker engine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from caldp.batch import aws
from caldp.batch.decisions import DEFAULT_LADDER
from caldp.exit_codes import ExitCode
from caldp.sample import CONTEXT, DATASET
from tests.conftest import FAKE_AWS, moto_server
from tests.support.batch_fixtures import QUEUES, make_queues, substitute
from tests.test_pipeline_s3 import CRDS_BUCKET, mirror_crds_with_references

IMAGE = os.environ.get("CALDP_TEST_IMAGE", "")
BUCKET = "caldp-batch-e2e"

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(not IMAGE, reason="CALDP_TEST_IMAGE is not set (a built caldp image)"),
]
boto3 = pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def batch_moto(tmp_path_factory):
    """A moto server of its own that runs Batch jobs as containers on the host network."""
    log = tmp_path_factory.mktemp("moto-batch") / "moto.log"
    env = {**os.environ, "MOTO_DOCKER_NETWORK_MODE": "host"}
    with moto_server([sys.executable, "-m", "tests.support.moto_batch_server"], log, env) as url:
        yield url


@pytest.fixture(scope="module")
def aws_world(batch_moto, tmp_path_factory):
    """Buckets with the sample's inputs and CRDS files, queues, the job definitions."""
    saved = {k: os.environ.get(k) for k in [*FAKE_AWS, "AWS_ENDPOINT_URL"]}
    os.environ.update(FAKE_AWS)
    os.environ["AWS_ENDPOINT_URL"] = batch_moto
    sample = tmp_path_factory.mktemp("sample")
    subprocess.run([sys.executable, "-m", "caldp.sample", str(sample)], check=True)  # noqa: S603
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(sample / f"inputs/{DATASET}.tar.gz"), BUCKET, f"inputs/{DATASET}.tar.gz")
    # the sample's CRDS cache, its references recorded with their sizes and sha1s
    cache = sample / "crds_cache"
    references = {p.name: p.read_bytes() for p in (cache / "references/hst").iterdir()}
    mirror_crds_with_references(s3, cache, references)
    s3.put_object(Bucket=BUCKET, Key=f"crds_env_vars/{CONTEXT}", Body=b"")

    client = boto3.client("batch")
    make_queues(client)
    # The project's job definition with the image.  On AWS the job's role gives the
    # credentials; here the definition carries moto's (fake) ones and its endpoint.
    job_env = {"CRDSBUCKET": f"s3://{CRDS_BUCKET}", "AWSYSVER": "e2e"}
    stand_in_role = {**FAKE_AWS, "AWS_ENDPOINT_URL": batch_moto}
    for name, extra in (("caldp", {}), ("caldp-oom", {"CALDP_SIMULATE_ERROR": "32"})):
        definition = aws.load_job_definition(IMAGE, job_env, name)
        definition["containerProperties"]["environment"] += [
            {"name": k, "value": v} for k, v in {**stand_in_role, **extra}.items()
        ]
        client.register_job_definition(**definition)
    yield s3, client
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def caldp_batch(*args: str) -> subprocess.CompletedProcess:
    """caldp-batch as an operator runs it (``caldp-batch --bucket B ... DATASET``)."""
    exe = Path(sys.executable).with_name("caldp-batch")
    started = time.monotonic()
    proc = subprocess.run(  # noqa: S603
        [str(exe), "--bucket", BUCKET, "--poll", "1", *args],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    print(f"caldp-batch {' '.join(args)}: exit {proc.returncode} in "
          f"{time.monotonic() - started:.0f} s\n{proc.stdout}")  # fmt: skip
    return proc


def diagnosis(s3, dataset: str) -> str:
    """What the job left in the bucket: its keys and the end of its process log."""
    found = keys(s3, f"outputs/{dataset}/") + keys(s3, "messages/")
    text = "\n".join(found)
    for key in found:
        if key.endswith("process.txt"):
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode(errors="replace")
            text += f"\n--- {key}\n{body[-6000:]}"
    return text


def keys(s3, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_a_dataset_runs_in_the_image_and_delivers_to_s3(aws_world):
    s3, client = aws_world
    proc = caldp_batch(DATASET)
    assert proc.returncode == 0, proc.stdout + proc.stderr + diagnosis(s3, DATASET)
    outputs = keys(s3, f"outputs/{DATASET}/")
    assert f"outputs/{DATASET}/{DATASET}.tar.gz" in outputs, outputs
    assert any(k.startswith(f"outputs/{DATASET}/logs/") or k.endswith(".txt") for k in outputs)
    assert keys(s3, "messages/") == [f"messages/processed-{DATASET}.trigger"]
    # the trigger is written last: no delivered object is newer than it
    trigger = s3.head_object(Bucket=BUCKET, Key=f"messages/processed-{DATASET}.trigger")
    for key in outputs:
        modified = s3.head_object(Bucket=BUCKET, Key=key)["LastModified"]
        assert modified <= trigger["LastModified"], key
    jobs = client.list_jobs(jobQueue=QUEUES[0], jobStatus="SUCCEEDED")["jobSummaryList"]
    (job,) = client.describe_jobs(jobs=[jobs[0]["jobId"]])["jobs"]
    # (moto's DescribeJobs shows the definition's command; the container got it substituted)
    assert substitute(job["container"]["command"], job["parameters"]) == [
        "caldp-process", DATASET, f"s3://{BUCKET}/inputs", f"s3://{BUCKET}/outputs/{DATASET}",
        "caldp-config-aws",
    ]  # fmt: skip


def test_a_memory_code_climbs_the_ladder(aws_world):
    s3, client = aws_world
    proc = caldp_batch("--job-definition", "caldp-oom", DATASET)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for queue in QUEUES:
        failed = client.list_jobs(jobQueue=queue, jobStatus="FAILED")["jobSummaryList"]
        failed = [j for j in failed if DATASET in j["jobName"]]
        assert len(failed) == 1, queue
        (job,) = client.describe_jobs(jobs=[failed[0]["jobId"]])["jobs"]
        assert job["container"]["exitCode"] == ExitCode.CALDP_MEMORY_ERROR
    line = next(line for line in proc.stdout.splitlines() if line.startswith(DATASET))
    assert "32" in line.split() and all(r.label in line for r in DEFAULT_LADDER), line


def test_a_terminal_code_ends_in_error(aws_world):
    s3, client = aws_world
    missing = "lsampl09q"  # no inputs for it in the bucket
    proc = caldp_batch(missing)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith(missing))
    code = int(re.search(rf"^{missing}\s+(\d+)", line).group(1))
    assert code not in (0, 31, 32, 33, 34), line
    assert f"messages/error-{missing}" in keys(s3, "messages/")
    failed = client.list_jobs(jobQueue=QUEUES[1], jobStatus="FAILED")["jobSummaryList"]
    assert not [j for j in failed if missing in j["jobName"]], "retried on a rung up"

"""caldp as CALCLOUD runs it: its job command and environment, under ``env -i``,
against S3 with IAM enforced, with exactly the job role's policy we ship.

A separate moto server is started with ``INITIAL_NO_AUTH_ACTION_COUNT=3``: those
three unauthenticated actions make an administrator, who sets up the buckets and
the job's user; from then on every request is checked against IAM policies.
The job runs with the job user's keys and nothing else of the test's
environment.  Its fresh home has an empty CRDS cache, as every Batch container.

What each test shows: the references are where the programs look, in a cache
that starts empty; the CRDS bucket is read by GETs only, laid out with mappings
or with pickles only; the policy is enough, and each of its statements needed;
one state message at a time; the metrics files add up as CALCLOUD adds them; a
SIGTERM ends with 143 and error-; CALDP_SIMULATE_ERROR as the operators use it.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from string import Template

import pytest

from tests.conftest import moto_server
from tests.support import synthetic
from tests.support.pipeline_helpers import make_tarball
from tests.support.standins import STANDIN_DIR
from tests.test_calcloud_metrics import calcloud_figures, command_of, wall_clock_slack

pytestmark = pytest.mark.s3

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "caldp" / "batch" / "job_role_policy.json"
README = ROOT / "README.rst"
BUCKET = "calcloud-processing-test"
CRDS_BUCKETS = {"mappings": "hst-crds-cache-mappings", "pickles": "hst-crds-cache-seed"}
CONTEXT = "hst_0729.pmap"
DS = "j8cb01010"  # a synthetic ACS association: calacs.e then runastrodriz
EARLIER = f"outputs/{DS}/{DS}_inputs.tar.gz"
METRICS = ("process_metrics.txt", "preview_metrics.txt")
REGION = "us-east-1"
# CALCLOUD's job definition sets these (terraform/batch.tf), beside CRDSBUCKET.
CALCLOUD_ENV = {"AWSDPVER": "v0.2.28", "AWSYSVER": "v0.4.48", "CSYS_VER": "caldp_20240815"}
# Test settings: short retries (every refusal below is final anyway).
FAST = {
    "AWS_MAX_ATTEMPTS": "1",
    "CALDP_S3_RETRIES": "2",
    "CALDP_S3_RETRY_SECONDS": "0.01",
    "CALDP_REFERENCE_RETRIES": "2",
    "CALDP_REFERENCE_RETRY_SECONDS": "0.01",
}


def documented_codes() -> dict[str, int]:
    """Statement -> exit code of a job without it, from the README's table."""
    rows = re.findall(r"^``(\w+)``\s.*\s(\d\d)\s*$", README.read_text(), re.MULTILINE)
    return {sid: int(code) for sid, code in rows if sid[0].isupper()}


class Moto:
    """A moto server with IAM enforced, and an administrator's clients."""

    def __init__(self, url: str, admin: dict[str, str]):
        self.url = url
        self.admin = admin

    def client(self, service: str, keys: dict[str, str] | None = None):
        import boto3

        keys = keys or self.admin
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
        )


@pytest.fixture(scope="module")
def moto_iam(tmp_path_factory):
    import boto3

    log = tmp_path_factory.mktemp("moto-iam") / "moto.log"
    env = {"PATH": "/usr/bin:/bin", "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    server = [sys.executable, "-m", "tests.support.moto_iam_server"]
    with moto_server(server, log, env, cwd=ROOT) as url:
        anonymous = {"AccessKeyId": "anonymous-setup", "SecretAccessKey": "anonymous-setup"}
        iam = boto3.client(
            "iam",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=anonymous["AccessKeyId"],
            aws_secret_access_key=anonymous["SecretAccessKey"],
        )
        iam.create_user(UserName="admin")  # the three unauthenticated actions
        iam.put_user_policy(
            UserName="admin",
            PolicyName="everything",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        admin = iam.create_access_key(UserName="admin")["AccessKey"]
        moto = Moto(url, admin)
        with pytest.raises(Exception, match="AccessDenied|InvalidAccessKeyId|Forbidden"):
            moto.client("s3", anonymous).create_bucket(Bucket="not-allowed-anonymously")
        yield moto


def assigned_references(folder: Path, crds_cache: Path) -> dict[str, str]:
    """The references CRDS assigns to the dataset's raws, in a scratch copy."""
    from caldp import bestrefs

    with pytest.MonkeyPatch.context() as env:
        env.setenv("CRDS_PATH", str(crds_cache))
        env.setenv("CRDS_READONLY_CACHE", "1")
        env.setenv("CRDS_SERVER_URL", "https://hst-serverless-mode.stsci.edu")
        raws = sorted(folder.glob("*_raw.fits"))
        return bestrefs.run(raws, crds_cache, CONTEXT, sync=False).references


def crds_objects(crds_cache: Path, references: dict[str, bytes], layout: str) -> dict[str, bytes]:
    """A CRDS bucket as ``layout`` has it, with ``references`` recorded in server_config."""
    from crds.client.proxy import crds_decode, crds_encode

    info = ast.literal_eval((crds_cache / "config" / "hst" / "server_config").read_text())
    metadata = crds_decode(info["download_metadata"])
    for name, data in references.items():
        metadata[name] = {"size": str(len(data)), "sha1sum": hashlib.sha1(data).hexdigest()}
    info["download_metadata"] = crds_encode(metadata)
    objects = {"config/hst/server_config": repr(info).encode()}
    objects |= {f"references/hst/{name}": data for name, data in references.items()}
    if layout == "mappings":
        for path in sorted((crds_cache / "mappings" / "hst").iterdir()):
            objects[f"mappings/hst/{path.name}"] = path.read_bytes()
    else:
        import pickle

        import crds

        with pytest.MonkeyPatch.context() as env:
            env.setenv("CRDS_PATH", str(crds_cache))
            env.setenv("CRDS_READONLY_CACHE", "1")
            context = crds.get_cached_mapping(CONTEXT)
            context.force_load()
        objects[f"pickles/hst/{CONTEXT}.pkl"] = pickle.dumps(context)
    return objects


@pytest.fixture(scope="module")
def world(moto_iam, crds_cache, tmp_path_factory):
    """The processing bucket with the dataset's inputs and a pinned context, and
    one CRDS bucket per layout; references are small stand-in files."""
    s3 = moto_iam.client("s3")
    scratch = tmp_path_factory.mktemp("inputs")
    files = synthetic.make_dataset(scratch, DS)
    tarball = make_tarball(scratch, f"{DS}.tar.gz", files)
    copies = tmp_path_factory.mktemp("bestrefs")
    for path in files:
        shutil.copy(path, copies)
    names = assigned_references(copies, crds_cache)
    assert len(names) > 10 and set(names.values()) == {"jref"}
    references = {name: f"stand-in reference {name}\n".encode() for name in names}
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"inputs/{DS}.tar.gz", Body=tarball.read_bytes())
    s3.put_object(Bucket=BUCKET, Key=f"crds_env_vars/{CONTEXT}", Body=b"")
    for layout, bucket in CRDS_BUCKETS.items():
        s3.create_bucket(Bucket=bucket)
        objects = crds_objects(crds_cache, references, layout)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda kv, b=bucket: s3.put_object(Bucket=b, Key=kv[0], Body=kv[1]),
                          objects.items()))  # fmt: skip
    iam = moto_iam.client("iam")
    iam.create_user(UserName="caldp-job")
    keys = iam.create_access_key(UserName="caldp-job")["AccessKey"]
    return {"references": names, "keys": keys}


def policy(crds_bucket: str, without: str | None = None) -> dict:
    text = Template(POLICY.read_text()).substitute(
        processing_bucket=BUCKET, crds_bucket=crds_bucket
    )
    document = json.loads(text)
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != without]
    return document


def keys(s3, folder: str) -> list[str]:
    """The keys under ``folder/``."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=folder + "/")
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def start_job(
    moto_iam, world, home: Path, layout: str, without: str | None = None, **more: str
) -> subprocess.Popen:
    """One Batch job: CALCLOUD's leftovers cleared, ``submit-`` written, the job
    user's policy set, then CALCLOUD's command under ``env -i`` (``env`` execs it:
    the process is caldp-process itself, as a container's first process)."""
    s3 = moto_iam.client("s3")
    for key in keys(s3, "outputs") + keys(s3, "messages"):
        s3.delete_object(Bucket=BUCKET, Key=key)
    s3.put_object(Bucket=BUCKET, Key=f"messages/submit-{DS}", Body=b"")
    # What an earlier attempt left (a failure delivers the inputs): CALCLOUD reruns
    # a dataset after a memory error, on a larger machine, into the same prefix.
    s3.put_object(Bucket=BUCKET, Key=EARLIER, Body=b"an earlier attempt's inputs")
    crds_bucket = CRDS_BUCKETS[layout]
    moto_iam.client("iam").put_user_policy(
        UserName="caldp-job",
        PolicyName="caldp-job-role",
        PolicyDocument=json.dumps(policy(crds_bucket, without)),
    )
    home.mkdir()
    env = {
        "PATH": f"{STANDIN_DIR}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        **CALCLOUD_ENV,
        "CRDSBUCKET": f"s3://{crds_bucket}",
        "AWS_ACCESS_KEY_ID": world["keys"]["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": world["keys"]["SecretAccessKey"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_iam.url,
        **FAST,
        "CALDP_STANDIN_RECORD": str(home / "standins.jsonl"),
        **more,
    }
    command = ["caldp-process", DS, f"s3://{BUCKET}/inputs", f"s3://{BUCKET}/outputs/{DS}"]
    command.append("caldp-config-aws")
    return subprocess.Popen(  # noqa: S603
        ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *command],
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_job(moto_iam, world, home: Path, layout: str, without: str | None = None, **more: str):
    """Run a job to its end; the result carries its wall clock, seen from outside."""
    started = time.monotonic()
    job = start_job(moto_iam, world, home, layout, without, **more)
    stdout, _ = job.communicate(timeout=600)
    result = subprocess.CompletedProcess(job.args, job.returncode, stdout)
    result.wall = time.monotonic() - started
    return result


def body(moto_iam, key: str) -> bytes:
    return moto_iam.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.mark.parametrize("layout", sorted(CRDS_BUCKETS))
def test_calcloud_job_with_exactly_the_shipped_policy(moto_iam, world, tmp_path, layout):
    home = tmp_path / "home"
    result = run_job(moto_iam, world, home, layout)
    assert result.returncode == 0, result.stdout[-4000:]
    s3 = moto_iam.client("s3")
    # One state message at a time: processed- replaced submit- and processing-.
    assert keys(s3, "messages") == [f"messages/processed-{DS}.trigger"]
    trigger = body(moto_iam, f"messages/processed-{DS}.trigger").decode()
    assert trigger == f"s3://{BUCKET}/outputs/{DS}/{DS}.tar.gz\n"
    outputs = keys(s3, f"outputs/{DS}")
    assert f"outputs/{DS}/{DS}.tar.gz" in outputs and f"outputs/{DS}/process.txt" in outputs
    assert EARLIER not in outputs  # the prefix holds this run's results only
    log = body(moto_iam, f"outputs/{DS}/process.txt").decode()
    assert "the delivery replaces this" not in log  # the write check became the log
    with tarfile.open(fileobj=io.BytesIO(body(moto_iam, f"outputs/{DS}/{DS}.tar.gz"))) as tar:
        members = tar.getnames()
    assert f"{DS}/{DS}_drz.fits" in members and f"{DS}/{DS}_asn.fits" in members
    assert any(m.endswith("_flt.fits") for m in members)
    # The references are where the programs were told to look (they opened each
    # one): in the instrument folder of a cache that started empty.
    cache = home / "crds_cache"
    for name in world["references"]:
        assert (cache / "references" / "hst" / "acs" / name).is_file(), name
    runs = [json.loads(line) for line in (home / "standins.jsonl").read_text().splitlines()]
    assert [r["program"] for r in runs] == ["calacs.e", "runastrodriz"]
    assert {r["env"]["jref"] for r in runs} == {f"{cache}/references/hst/acs/"}
    # Only GETs of named objects: the policy allows no listing of the CRDS bucket.
    crds = f"s3://{CRDS_BUCKETS[layout]}"
    if layout == "mappings":
        assert f"from {crds}/mappings/hst/ ready" in log
        local = sorted(p.name for p in (cache / "mappings" / "hst").iterdir())
        assert CONTEXT in local and "hst_acs_0421.imap" in local
        assert not any(n.startswith(("hst_cos", "hst_stis", "hst_wfc3")) for n in local)
    else:
        assert f"{crds}/mappings/hst/{CONTEXT} is not there: using the pickled context" in log
        assert (cache / "pickles" / "hst" / f"{CONTEXT}.pkl").is_file()
    assert f"{CONTEXT} (pinned by the operator)" in log
    # CALCLOUD's model ingest adds the two metrics files up (lines 4, 9 and last).
    texts = {n: body(moto_iam, f"outputs/{DS}/{n}").decode() for n in METRICS}
    figures = [calcloud_figures(text) for text in texts.values()]
    assert [status for _, _, status in figures] == ["0", "0"]
    # They cover the run from process start up to the delivery of the files
    # themselves: the upload and the messages that follow are not in them.
    after = sum(
        float(x)
        for x in re.findall(r"step (?:deliver|messages): done in ([\d.]+) s", result.stdout)
    )
    gap = sum(seconds for seconds, _, _ in figures) + after - result.wall
    assert abs(gap) <= wall_clock_slack()
    assert figures[0][1] > 100_000  # kB: caldp and its programs, counted once
    path = f"{STANDIN_DIR}:{Path(sys.executable).parent}:/usr/bin:/bin"
    for text in texts.values():
        assert shutil.which(command_of(text)[0], path=path), text.splitlines()[0]


def test_calcloud_cancel_is_143_with_logs_and_error(moto_iam, world, tmp_path):
    """An operator cancel or a Batch timeout: SIGTERM to the container's process
    while a program runs.  143, the logs delivered, error- the only message."""
    home = tmp_path / "home"
    job = start_job(
        moto_iam, world, home, "mappings", CALDP_STANDIN_ONLY="calacs.e", CALDP_STANDIN_HANG="1"
    )
    try:
        deadline = time.monotonic() + 120
        while not (home / "standins.jsonl").exists() and job.poll() is None:
            assert time.monotonic() < deadline, "calacs.e never started"
            time.sleep(0.1)
        time.sleep(0.5)
        job.send_signal(signal.SIGTERM)
        stdout, _ = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 143, stdout[-3000:]
    s3 = moto_iam.client("s3")
    assert keys(s3, "messages") == [f"messages/error-{DS}"]
    log = body(moto_iam, f"outputs/{DS}/process.txt").decode()
    assert "the delivery replaces this" not in log and "143" in log


@pytest.mark.parametrize(
    "value, code, message",
    [("25", 25, f"messages/error-{DS}"), ("99", 0, f"messages/processed-{DS}.trigger")],
)
def test_calcloud_simulated_errors(moto_iam, world, tmp_path, value, code, message):
    """CALCLOUD's operators set CALDP_SIMULATE_ERROR in the job definition: 25 fails
    the delivery, after processing- and with error-; a value that is no caldp code
    is ignored, as it was by the earlier implementation."""
    result = run_job(moto_iam, world, tmp_path / "home", "mappings", CALDP_SIMULATE_ERROR=value)
    assert result.returncode == code, result.stdout[-3000:]
    assert keys(moto_iam.client("s3"), "messages") == [message]


@pytest.mark.parametrize("sid", sorted(documented_codes()))
def test_each_statement_is_needed(moto_iam, world, tmp_path, sid):
    """Without any one statement the job fails, with the code the README gives."""
    assert {s["Sid"] for s in policy("x")["Statement"]} == set(documented_codes())
    result = run_job(moto_iam, world, tmp_path / "home", "mappings", without=sid)
    assert result.returncode == documented_codes()[sid], result.stdout[-3000:]
    assert "AccessDenied" in result.stdout or "Forbidden" in result.stdout
    s3 = moto_iam.client("s3")
    assert f"messages/processed-{DS}.trigger" not in keys(s3, "messages")


def test_the_policy_deletes_only_earlier_results_and_lists_no_crds_bucket():
    document = policy("hst-crds")
    for statement in document["Statement"]:
        resources = statement["Resource"]
        if any("Delete" in a for a in statement["Action"]) and statement["Sid"] != "WriteMessages":
            assert statement["Sid"] == "RemoveEarlierResults"
            assert statement["Action"] == ["s3:DeleteObject"]
        if "s3:ListBucket" in statement["Action"]:
            assert resources == [f"arn:aws:s3:::{BUCKET}"]
            prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
            assert prefixes == ["crds_env_vars/*", "outputs/*"]
    assert all(s["Effect"] == "Allow" for s in document["Statement"])

"""caldp-process the way AWS Batch runs it: S3 in, S3 out, CRDS references from S3.

Everything goes through a real moto S3 server on 127.0.0.1 and real calcos.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import synthetic, tarballs
from tests.support.pipeline_helpers import make_tarball, run
from tests.support.s3_fixtures import RecordingProxy, head_reports, s3_client, use_fast_retries
from tests.support.standins import STANDIN_DIR

pytestmark = pytest.mark.s3

BUCKET = "caldp-pipeline-test"
CRDS_BUCKET = "caldp-pipeline-crds"
DS = "lb4l02m2q"
LOG_FILES = {
    "process.txt",
    "process_metrics.txt",
    "preview.txt",
    "preview_metrics.txt",
    "disk_metrics.txt",
    "metrics.json",
}


@pytest.fixture
def s3(aws_env, monkeypatch, pipeline_env, testdata):
    """Buckets with the real COS acquisition as CALCLOUD's input tarball."""
    use_fast_retries(monkeypatch)
    client = s3_client(aws_env)
    client.create_bucket(Bucket=BUCKET)
    staging = pipeline_env / "staging"
    staging.mkdir()
    files = [testdata / "cos" / "acq" / f"{DS}_{s}.fits.gz" for s in ("rawacq", "spt")]
    tarball = make_tarball(staging, f"{DS}.tar.gz", files)
    client.put_object(Bucket=BUCKET, Key=f"inputs/{DS}.tar.gz", Body=tarball.read_bytes())
    return client


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def body(client, key: str, bucket: str = BUCKET) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_s3_in_s3_out_with_a_local_cache(s3):
    command = [DS, f"s3://{BUCKET}/inputs", f"s3://{BUCKET}/outputs/{DS}", "caldp-config-local"]
    assert run(*command) == 0
    outputs = keys(s3, BUCKET, f"outputs/{DS}/")
    assert outputs == sorted(
        [f"outputs/{DS}/{DS}.tar.gz"] + [f"outputs/{DS}/{n}" for n in LOG_FILES]
    )
    assert keys(s3, BUCKET, "messages/") == [f"messages/processed-{DS}.trigger"]
    trigger = body(s3, f"messages/processed-{DS}.trigger").decode().splitlines()
    assert trigger == [f"s3://{BUCKET}/outputs/{DS}/{DS}.tar.gz"]
    with tarfile.open(fileobj=io.BytesIO(body(s3, f"outputs/{DS}/{DS}.tar.gz"))) as tar:
        names = sorted(tar.getnames())
    assert names == sorted([f"{DS}/{DS}.tra", f"{DS}/{DS}_rawacq.fits", f"{DS}/{DS}_spt.fits"])
    log = body(s3, f"outputs/{DS}/process.txt").decode()
    assert "calcos exit 5 is not a failure" in log
    assert body(s3, f"outputs/{DS}/process_metrics.txt").decode().endswith("Exit status: 0\n")


def test_missing_input_object_is_26_with_logs_and_error_message(s3):
    assert (
        run(
            "lb4l02m2z",
            f"s3://{BUCKET}/inputs",
            f"s3://{BUCKET}/outputs/lb4l02m2z",
            "caldp-config-local",
        )
        == 26
    )
    assert keys(s3, BUCKET, "messages/") == ["messages/error-lb4l02m2z"]
    outputs = keys(s3, BUCKET, "outputs/lb4l02m2z/")
    assert "outputs/lb4l02m2z/process.txt" in outputs
    assert not any(
        k.endswith(".tar.gz") for k in outputs
    )  # nothing was fetched, nothing to deliver
    log = body(s3, "outputs/lb4l02m2z/process.txt").decode()
    assert (
        log.strip()
        .splitlines()[-1]
        .endswith("exit 26 S3_DOWNLOAD_ERROR (downloading inputs from S3)")
    )


def test_unreachable_output_bucket_is_25_before_any_work(s3, pipeline_env):
    assert (
        run(
            DS,
            f"s3://{BUCKET}/inputs",
            f"s3://no-such-bucket-here/outputs/{DS}",
            "caldp-config-local",
        )
        == 25
    )
    assert keys(s3, BUCKET, "messages/") == []


def mirror_crds_with_references(client, crds_cache: Path, references: dict[str, bytes]) -> None:
    """The real CRDS cache in a bucket, plus reference files the acquisition's headers
    name, recorded in server_config's download_metadata with their size and sha1."""
    from crds.client.proxy import crds_decode, crds_encode

    client.create_bucket(Bucket=CRDS_BUCKET)
    uploads: dict[str, bytes] = {}
    for sub in ("config/hst", "mappings/hst", "references/hst"):
        for p in sorted((crds_cache / sub).rglob("*")):
            if p.is_file():
                uploads[p.relative_to(crds_cache).as_posix()] = p.read_bytes()
    info = ast.literal_eval(uploads["config/hst/server_config"].decode())
    metadata = crds_decode(info["download_metadata"])
    for name, data in references.items():
        metadata[name] = {"size": str(len(data)), "sha1sum": hashlib.sha1(data).hexdigest()}
        uploads[f"references/hst/{name}"] = data
    info["download_metadata"] = crds_encode(metadata)
    uploads["config/hst/server_config"] = repr(info).encode()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda kv: client.put_object(Bucket=CRDS_BUCKET, Key=kv[0], Body=kv[1]),
                uploads.items(),
            )
        )


def acquisition_references(testdata: Path, crds_cache: Path, tmp: Path) -> list[str]:
    """The reference files CRDS assigns to the real acquisition (most are not in the test cache)."""
    import shutil

    from caldp import bestrefs

    raw = tmp / f"{DS}_rawacq.fits"
    with __import__("gzip").open(testdata / "cos" / "acq" / f"{DS}_rawacq.fits.gz") as f:
        raw.write_bytes(f.read())
    result = bestrefs.run([raw], crds_cache, "hst_0729.pmap", sync=False)
    shutil.rmtree(tmp)
    return bestrefs.locate(result.references, crds_cache).missing


@pytest.mark.parametrize("corrupt", [False, True], ids=["checked", "corrupt-reference"])
def test_aws_profile_references_from_s3(
    s3, monkeypatch, pipeline_env, testdata, crds_cache, corrupt
):
    scratch = pipeline_env / "scratch"
    scratch.mkdir()
    missing = acquisition_references(testdata, crds_cache, scratch)
    assert missing, "the acquisition needs references the test cache lacks"
    references = {name: f"synthetic stand-in bytes for {name}\n".encode() for name in missing}
    mirror_crds_with_references(s3, crds_cache, references)
    if corrupt:  # the bucket holds different bytes than server_config records
        s3.put_object(Bucket=CRDS_BUCKET, Key=f"references/hst/{missing[0]}", Body=b"tampered")
    home = pipeline_env / "home"
    monkeypatch.setenv("HOME", str(home))
    for key in ("CRDS_PATH", "CRDS_READONLY_CACHE", "CRDS_SERVER_URL"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("CRDSBUCKET", f"s3://{CRDS_BUCKET}")
    s3.put_object(Bucket=BUCKET, Key="crds_env_vars/hst_0729.pmap", Body=b"")

    code = run(DS, f"s3://{BUCKET}/inputs", f"s3://{BUCKET}/outputs/{DS}", "caldp-config-aws")

    log = body(s3, f"outputs/{DS}/process.txt").decode()
    assert "hst_0729.pmap (pinned by the operator)" in log
    cache = home / "crds_cache"
    assert (cache / "mappings" / "hst" / "hst_0729.pmap").exists()
    if corrupt:
        assert code == 27
        assert keys(s3, BUCKET, "messages/") == [f"messages/error-{DS}"]
        assert not list((cache / "references").rglob(missing[0]))
    else:
        assert code == 0, log[-3000:]
        assert keys(s3, BUCKET, "messages/") == [f"messages/processed-{DS}.trigger"]
        for name, data in references.items():  # where CRDS keeps COS files in a new cache
            assert (cache / "references" / "hst" / "cos" / name).read_bytes() == data


def test_tarball_without_the_datasets_files_is_21_not_26(s3):
    """What a downloaded tarball holds is the inputs' fault: no point retrying the download."""
    tarball = body(s3, f"inputs/{DS}.tar.gz")
    s3.put_object(Bucket=BUCKET, Key="inputs/lb4l02m2x.tar.gz", Body=tarball)
    code = run(
        "lb4l02m2x",
        f"s3://{BUCKET}/inputs",
        f"s3://{BUCKET}/outputs/lb4l02m2x",
        "caldp-config-local",
    )
    assert code == 21
    log = body(s3, "outputs/lb4l02m2x/process.txt").decode()
    assert "no input files for lb4l02m2x" in log


@pytest.mark.fault(
    "a corrupt input tarball on S3: CRC error, cut right after a member",
    "exit 21 (not a download retry), error-, nothing calibrated",
)
@pytest.mark.parametrize(
    "damage, words",
    [("cut_after_first_member", "end-of-stream marker"), ("flipped_byte", "CRC check failed")],
)
def test_corrupt_input_tarball_is_21_and_nothing_is_calibrated(s3, testdata, damage, words):
    """The object is whole (S3 checks its length) but the tarball it holds is not: the
    stream cut after the _rawacq member, or a flipped byte (in the _spt member's gzip
    header, which nothing but the outer CRC would notice)."""
    acq = testdata / "cos" / "acq"
    members = [
        (f"{DS}_{s}.fits.gz", (acq / f"{DS}_{s}.fits.gz").read_bytes()) for s in ("rawacq", "spt")
    ]
    build = getattr(tarballs, damage)
    data = build(members, member=1, at=5) if damage == "flipped_byte" else build(members)
    s3.put_object(Bucket=BUCKET, Key=f"inputs/{DS}.tar.gz", Body=data)

    code = run(DS, f"s3://{BUCKET}/inputs", f"s3://{BUCKET}/outputs/{DS}", "caldp-config-local")

    assert code == 21
    assert keys(s3, BUCKET, "messages/") == [f"messages/error-{DS}"]
    log = body(s3, f"outputs/{DS}/process.txt").decode()
    assert words in log
    assert "result: exit 21 INPUT_TAR_FILE_ERROR" in log.strip().splitlines()[-1]
    assert "step stage1" not in log and "calcos" not in log  # nothing calibrated
    assert not [k for k in keys(s3, BUCKET, f"outputs/{DS}/") if k.endswith(".tar.gz")]


# ----------------------------------------------------------------------------- verification

ACS = "j8cb01u1q"
BIG_PRODUCT = 12 * 2**20  # past one multipart part: the tarball goes up in parts


def big_calacs(folder: Path) -> Path:
    """A ``calacs.e`` that runs the stand-in, then writes a product of random bytes
    (which no compression shrinks), so that the delivery tarball is a multipart upload."""
    folder.mkdir()
    program = folder / "calacs.e"
    program.write_text(
        "#!/bin/sh\n"
        f'"{STANDIN_DIR / "calacs.e"}" "$@" || exit $?\n'
        f"head -c {BIG_PRODUCT} /dev/urandom > {ACS}_big.fits\n"
    )
    program.chmod(0o755)
    return folder


@pytest.mark.fault(
    "the store keeps other bytes than sent (HEAD after upload: another size or SHA-256)",
    "exit 25, error-, no processed- trigger (put_bytes and the multipart tarball)",
)
@pytest.mark.parametrize(
    "key, lie",
    [
        ("process.txt", {"size_delta": 1}),
        (f"{ACS}.tar.gz", {"checksum": base64.b64encode(b"\0" * 32).decode()}),
    ],
    ids=["one-put-wrong-size", "multipart-wrong-checksum"],
)
def test_an_upload_that_does_not_verify_is_25_without_a_trigger(
    aws_env, pipeline_env, monkeypatch, key, lie
):
    tmp = pipeline_env
    use_fast_retries(monkeypatch)
    client = s3_client(aws_env)
    client.create_bucket(Bucket=BUCKET)
    synthetic.make_dataset(tmp / "src", ACS)
    monkeypatch.setenv("PATH", f"{big_calacs(tmp / 'big')}:{os.environ['PATH']}")
    seen: list[list[str]] = []
    alter = head_reports(f"outputs/{ACS}/{key}", **lie)

    def spy(method: str, path: str, headers):
        if method == "HEAD" and path.split("?")[0].endswith(key):
            seen.append([k.lower() for k, _ in headers])
        return alter(method, path, headers)

    with RecordingProxy(aws_env, alter=spy) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        code = run(ACS, tmp / "src", f"s3://{BUCKET}/outputs/{ACS}")
    assert code == 25
    assert keys(client, BUCKET, "messages/") == [f"messages/error-{ACS}"]
    assert seen, f"no HEAD of {key} after its upload"
    if "checksum" in lie:
        assert all("x-amz-checksum-sha256" in names for names in seen)  # the lie was told
        assert any("partNumber=" in path for _m, path, _s in proxy.requests("PUT"))


# ----------------------------------------------------------------------------- reruns


def _rerun_setup(aws_env, pipeline_env, monkeypatch):
    use_fast_retries(monkeypatch)
    client = s3_client(aws_env)
    client.create_bucket(Bucket=BUCKET)
    synthetic.make_dataset(pipeline_env / "src", ACS)
    return client


def _fail_stage1(monkeypatch, fail: bool) -> None:
    if fail:
        monkeypatch.setenv("CALDP_STANDIN_FAIL", "2")
        monkeypatch.setenv("CALDP_STANDIN_ONLY", "calacs.e")
    else:
        monkeypatch.delenv("CALDP_STANDIN_FAIL", raising=False)
        monkeypatch.delenv("CALDP_STANDIN_ONLY", raising=False)


@pytest.mark.fault(
    "a rerun into the same S3 output prefix with another outcome",
    "the prefix holds exactly the last run's results; objects not caldp's stay",
)
@pytest.mark.parametrize(
    "first_fails", [False, True], ids=["success-then-error", "error-then-success"]
)
def test_a_rerun_leaves_exactly_its_own_results_in_the_prefix(
    aws_env, pipeline_env, monkeypatch, first_fails
):
    client = _rerun_setup(aws_env, pipeline_env, monkeypatch)
    prefix = f"outputs/{ACS}/"
    output = f"s3://{BUCKET}/{prefix}"
    client.put_object(Bucket=BUCKET, Key=f"{prefix}notes/operator.md", Body=b"not caldp's\n")
    client.put_object(Bucket=BUCKET, Key=f"{prefix}{ACS}.dat", Body=b"not caldp's either\n")
    runs = []
    for fail in (first_fails, not first_fails):
        _fail_stage1(monkeypatch, fail)
        assert run(ACS, pipeline_env / "src", output) == (23 if fail else 0)
        runs.append(keys(client, BUCKET, prefix))
    state = "error-" if not first_fails else "processed-"
    assert [k.split("/")[-1].split(ACS)[0] for k in keys(client, BUCKET, "messages/")] == [state]
    # what each run delivers when the prefix starts empty (but for the two objects above)
    expected = {}
    for fail in (False, True):
        client.delete_objects(
            Bucket=BUCKET,
            Delete={"Objects": [{"Key": k} for k in keys(client, BUCKET, prefix)]},
        )
        client.put_object(Bucket=BUCKET, Key=f"{prefix}notes/operator.md", Body=b"not caldp's\n")
        client.put_object(Bucket=BUCKET, Key=f"{prefix}{ACS}.dat", Body=b"not caldp's either\n")
        _fail_stage1(monkeypatch, fail)
        run(ACS, pipeline_env / "src", output)
        expected[fail] = keys(client, BUCKET, prefix)
    assert f"{prefix}{ACS}.tar.gz" in expected[False] and f"{prefix}preview.txt" in expected[False]
    assert f"{prefix}{ACS}_inputs.tar.gz" in expected[True]
    assert runs[1] == expected[not first_fails]

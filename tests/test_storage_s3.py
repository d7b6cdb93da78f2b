"""S3 inputs, outputs and messages against a real moto server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from caldp.datasets import parse
from caldp.errors import DownloadError, InputError, OutputError
from caldp.settings import Settings
from caldp.storage import DeliveryPlan, Uri, parse_output_uri
from caldp.storage import s3 as s3mod
from tests.support.s3_fixtures import CuttingProxy, RecordingProxy

pytestmark = pytest.mark.s3

BUCKET = "caldp-test-bucket"
COS_DS = "ldfd01010"


def _tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _cos_inputs(testdata: Path) -> dict[str, bytes]:
    raw = testdata / "cos" / COS_DS / "raw"
    return {p.name: p.read_bytes() for p in sorted(raw.iterdir())}


def _keys(client, bucket: str = BUCKET, prefix: str = "") -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _get(client, key: str, bucket: str = BUCKET) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _members(blob: bytes) -> dict[str, bytes]:
    # gzip.decompress checks the gzip CRC-32 and length trailer.
    raw = gzip.decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


# ----------------------------------------------------------------------------- inputs


def test_fetch_streams_the_input_tarball(s3, testdata, tmp_path):
    files = _cos_inputs(testdata)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"inputs/{COS_DS}.tar.gz", Body=_tar_gz(files))
    dest = tmp_path / "in"
    got = s3mod.fetch(f"{BUCKET}/inputs", parse(COS_DS), dest, Settings.read())
    assert sorted(p.name for p in got) == sorted(files)
    for path in got:
        assert path.parent == dest
        assert path.read_bytes() == files[path.name]


def test_fetch_missing_object_is_26_without_retrying(monkeypatch, s3, tmp_path):
    s3.create_bucket(Bucket=BUCKET)
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        with pytest.raises(DownloadError) as err:
            s3mod.fetch(f"{BUCKET}/inputs", parse(COS_DS), tmp_path / "in", Settings.read())
    assert "NoSuchKey" in str(err.value)
    assert len(proxy.requests("GET")) == 1  # a missing object is final
    assert list((tmp_path / "in").iterdir()) == []


def test_fetch_from_a_bucket_that_does_not_exist_is_26(s3, tmp_path):
    with pytest.raises(DownloadError) as err:
        s3mod.fetch("no-such-bucket-caldp/inputs", parse(COS_DS), tmp_path / "in", Settings.read())
    assert "s3://no-such-bucket-caldp/inputs/" in str(err.value)
    assert "NoSuchBucket" in str(err.value)


def test_truncated_tarball_is_21_and_leaves_nothing(s3, testdata, tmp_path):
    blob = _tar_gz(_cos_inputs(testdata))
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"inputs/{COS_DS}.tar.gz", Body=blob[: len(blob) * 2 // 3])
    dest = tmp_path / "in"
    with pytest.raises(InputError):
        s3mod.fetch(f"{BUCKET}/inputs", parse(COS_DS), dest, Settings.read())
    assert list(dest.rglob("*")) == []


def _two_member_tarball() -> tuple[dict[str, bytes], bytes]:
    rng = __import__("random").Random(7)
    files = {
        "first_raw.fits": rng.randbytes(64 * 1024),
        "second_raw.fits": rng.randbytes(1024 * 1024),
    }
    return files, _tar_gz(files)


def test_connection_dropped_mid_transfer_is_retried_from_a_clean_folder(monkeypatch, s3, tmp_path):
    files, blob = _two_member_tarball()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"inputs/{COS_DS}.tar.gz", Body=blob)
    dest = tmp_path / "in"
    with CuttingProxy(os.environ["AWS_ENDPOINT_URL"], cut_after=300_000, cuts=1) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        got = s3mod.fetch(f"{BUCKET}/inputs", parse(COS_DS), dest, Settings.read())
    assert proxy.cut_count == 1
    # The first member had been extracted before the cut; a leftover would make
    # the second extraction fail ("appears twice"), and nothing else is there.
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)
    assert {p.name: p.read_bytes() for p in got} == files


def test_connection_always_dropped_is_26_after_bounded_retries(monkeypatch, s3, tmp_path):
    _files, blob = _two_member_tarball()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"inputs/{COS_DS}.tar.gz", Body=blob)
    dest = tmp_path / "in"
    with CuttingProxy(os.environ["AWS_ENDPOINT_URL"], cut_after=300_000) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        with pytest.raises(DownloadError):
            s3mod.fetch(f"{BUCKET}/inputs", parse(COS_DS), dest, Settings.read())
    assert proxy.cut_count == int(os.environ["CALDP_S3_RETRIES"])
    assert list(dest.rglob("*")) == []


# ----------------------------------------------------------------------------- outputs


def _products(testdata: Path, tmp_path: Path) -> DeliveryPlan:
    work = tmp_path / "work"
    work.mkdir()
    cal = testdata / "cos" / COS_DS / "calcos-3.3.4"
    products = []
    for src in sorted(cal.glob("*x1d*.fits.gz")) + sorted(
        (testdata / "cos" / COS_DS / "raw").glob("*.gz")
    ):
        dst = work / src.name[: -len(".gz")]
        dst.write_bytes(gzip.decompress(src.read_bytes()))
        products.append(dst)
    env = work / f"{COS_DS}_cal_env.txt"
    env.write_text("CRDS_CONTEXT=hst_0729.pmap\n")
    previews = []
    for name in (f"{COS_DS}_x1dsum.png", f"{COS_DS}_x1dsum_thumb.png"):
        (work / name).write_bytes(b"\x89PNG\r\n\x1a\n" + name.encode())
        previews.append(work / name)
    logs = []
    for name in ("process.txt", "process_metrics.txt", "preview.txt", "preview_metrics.txt"):
        (work / name).write_text(f"{name} of {COS_DS}\n")
        logs.append(work / name)
    return DeliveryPlan(
        dataset=parse(COS_DS), products=products, previews=previews, logs=logs, env_files=[env]
    )


def test_deliver_writes_the_tarball_then_the_logs(s3, testdata, tmp_path):
    s3.create_bucket(Bucket=BUCKET)
    plan = _products(testdata, tmp_path)
    output = s3mod.S3Output(parse_output_uri(f"s3://{BUCKET}/outputs/{COS_DS}"), Settings.read())
    output.check()
    delivered = output.deliver(plan)

    prefix = f"outputs/{COS_DS}"
    tar_key = f"{prefix}/{COS_DS}.tar.gz"
    log_keys = {f"{prefix}/{p.name}" for p in plan.logs}
    assert _keys(s3) == {tar_key} | log_keys  # nothing else (the write check left nothing)
    members = _members(_get(s3, tar_key))
    expected = {f"{COS_DS}/{p.name}": p.read_bytes() for p in plan.products}
    expected |= {f"{COS_DS}/env/{p.name}": p.read_bytes() for p in plan.env_files}
    expected |= {f"{COS_DS}/previews/{p.name}": p.read_bytes() for p in plan.previews}
    assert members == expected
    for path in plan.logs:
        assert _get(s3, f"{prefix}/{path.name}") == path.read_bytes()
    assert delivered.message_lines == [f"s3://{BUCKET}/{tar_key}"]


def test_inputs_only_delivery_has_its_own_tarball_name(s3, testdata, tmp_path):
    s3.create_bucket(Bucket=BUCKET)
    plan = _products(testdata, tmp_path)
    plan.products = [p for p in plan.products if "x1d" not in p.name]
    plan.previews = []
    plan.inputs_only = True
    delivered = s3mod.S3Output(Uri("s3", f"{BUCKET}/outputs/{COS_DS}"), Settings.read()).deliver(
        plan
    )
    key = f"outputs/{COS_DS}/{COS_DS}_inputs.tar.gz"
    assert delivered.message_lines == [f"s3://{BUCKET}/{key}"]
    assert f"outputs/{COS_DS}/{COS_DS}.tar.gz" not in _keys(s3)
    assert sorted(_members(_get(s3, key))) == sorted(
        [f"{COS_DS}/{p.name}" for p in plan.products]
        + [f"{COS_DS}/env/{p.name}" for p in plan.env_files]
    )


def test_logs_only_delivery_names_the_prefix(s3, testdata, tmp_path):
    s3.create_bucket(Bucket=BUCKET)
    plan = _products(testdata, tmp_path)
    plan.products, plan.previews, plan.env_files = [], [], []
    present = list(plan.logs)
    plan.logs.append(tmp_path / "work" / "disk_metrics.txt")  # never written: skipped
    delivered = s3mod.S3Output(Uri("s3", f"{BUCKET}/outputs/{COS_DS}"), Settings.read()).deliver(
        plan
    )
    assert delivered.message_lines == [f"s3://{BUCKET}/outputs/{COS_DS}/"]
    assert _keys(s3) == {f"outputs/{COS_DS}/{p.name}" for p in present}


def test_large_delivery_uses_parallel_parts_and_round_trips(monkeypatch, s3, tmp_path):
    s3.create_bucket(Bucket=BUCKET)
    work = tmp_path / "work"
    work.mkdir()
    rng = __import__("numpy").random.default_rng(3)
    products = []
    for i in range(3):  # float32 noise: compressible like real images, ~8 MB each
        path = work / f"j8bt05n{i}q_flt.fits"
        path.write_bytes(rng.normal(100, 5, size=(1400, 1400)).astype(">f4").tobytes())
        products.append(path)
    plan = DeliveryPlan(dataset=parse("j8bt05njq"), products=products)
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        delivered = s3mod.S3Output(
            Uri("s3", f"{BUCKET}/outputs/j8bt05njq"), Settings.read()
        ).deliver(plan)
    key = "outputs/j8bt05njq/j8bt05njq.tar.gz"
    parts = [r for r in proxy.requests("PUT") if "partNumber=" in r[1]]
    assert len(parts) >= 2
    assert delivered.message_lines == [f"s3://{BUCKET}/{key}"]
    blob = _get(s3, key)
    assert len(blob) < sum(p.stat().st_size for p in products)  # compressed
    members = _members(blob)
    assert {k: hashlib.sha256(v).hexdigest() for k, v in members.items()} == {
        f"j8bt05njq/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in products
    }
    # The tarball was streamed: nothing was written beside the products.
    assert sorted(work.iterdir()) == sorted(products)


def test_messages_follow_the_contract_and_the_trigger_comes_last(
    monkeypatch, s3, testdata, tmp_path
):
    s3.create_bucket(Bucket=BUCKET)
    for name in (f"submit-{COS_DS}", f"placed-{COS_DS}", f"error-{COS_DS}"):
        s3.put_object(Bucket=BUCKET, Key=f"messages/{name}", Body=b"orchestrator\n")
    plan = _products(testdata, tmp_path)
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        output = s3mod.S3Output(Uri("s3", f"{BUCKET}/outputs/{COS_DS}"), Settings.read())
        output.messages.lock(COS_DS)
        output.messages.start(COS_DS)
        assert f"messages/processing-{COS_DS}" in _keys(s3, prefix="messages/")
        assert f"messages/error-{COS_DS}" not in _keys(s3, prefix="messages/")
        delivered = output.deliver(plan)
        written = output.messages.finish(COS_DS, True, delivered.message_lines)

    trigger = f"messages/processed-{COS_DS}.trigger"
    assert written == f"s3://{BUCKET}/{trigger}"
    # processing- replaced submit- (one state message at a time); placed- is not ours
    assert _keys(s3, prefix="messages/") == {f"messages/placed-{COS_DS}", trigger}
    assert _get(s3, f"messages/placed-{COS_DS}") == b"orchestrator\n"
    assert _get(s3, trigger).decode() == f"s3://{BUCKET}/outputs/{COS_DS}/{COS_DS}.tar.gz\n"

    log = [(method, path.split("?")[0]) for method, path, _status in proxy.requests()]
    assert not any("placed-" in p for _m, p in log)

    def last(method: str, suffix: str) -> int:
        return max(i for i, (m, p) in enumerate(log) if m == method and p.endswith(suffix))

    def first(method: str, suffix: str) -> int:
        return min(i for i, (m, p) in enumerate(log) if m == method and p.endswith(suffix))

    trigger_put = first("PUT", trigger)
    assert first("PUT", f"processing-{COS_DS}") < first("DELETE", f"submit-{COS_DS}")
    assert first("PUT", f"processing-{COS_DS}") < first("PUT", f"{COS_DS}.tar.gz")
    assert last("PUT", f"{COS_DS}.tar.gz") < trigger_put
    for path in plan.logs:
        assert last("PUT", f"{COS_DS}/{path.name}") < trigger_put
    assert trigger_put < last("DELETE", f"processing-{COS_DS}")


def test_error_message_and_stale_messages(s3):
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"messages/processed-{COS_DS}.trigger", Body=b"old\n")
    box = s3mod.S3Output(Uri("s3", f"{BUCKET}/outputs/{COS_DS}"), Settings.read()).messages
    box.lock(COS_DS)
    box.start(COS_DS)
    assert _keys(s3, prefix="messages/") == {f"messages/processing-{COS_DS}"}
    lines = [f"s3://{BUCKET}/outputs/{COS_DS}/"]
    box.finish(COS_DS, False, lines)
    assert _keys(s3, prefix="messages/") == {f"messages/error-{COS_DS}"}
    assert _get(s3, f"messages/error-{COS_DS}").decode() == lines[0] + "\n"


def test_processing_message_is_the_lock_of_the_output(monkeypatch, s3):
    """An existing processing- is another run's: refused (30), nothing changed -- unless
    an earlier attempt of this same Batch job wrote it.  A run that stops before it
    starts (its output check failed) takes its processing- away again."""
    from caldp.exit_codes import ExitCode
    from caldp.locks import Busy
    from caldp.sysexit import classify

    s3.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "job-1")
    box = s3mod.S3Output(Uri("s3", f"{BUCKET}/outputs/{COS_DS}"), Settings.read()).messages
    box.lock(COS_DS)
    box.start(COS_DS)
    first = _get(s3, f"messages/processing-{COS_DS}")
    assert b"batch job job-1" in first
    s3.put_object(Bucket=BUCKET, Key=f"messages/submit-{COS_DS}", Body=b"orchestrator\n")
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "job-2")
    other = s3mod.S3Output(Uri("s3", f"{BUCKET}/outputs/{COS_DS}"), Settings.read()).messages
    with pytest.raises(Busy) as err:
        other.lock(COS_DS)
    other.release(COS_DS)
    assert classify(err.value) == ExitCode.DATASET_BUSY
    assert "in progress" in str(err.value) and "job-1" in str(err.value)
    assert _get(s3, f"messages/processing-{COS_DS}") == first
    assert f"messages/submit-{COS_DS}" in _keys(s3, prefix="messages/")  # untouched
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "job-1")  # the same job, attempt 2
    again = s3mod.S3Output(Uri("s3", f"{BUCKET}/outputs/{COS_DS}"), Settings.read()).messages
    again.lock(COS_DS)
    assert _get(s3, f"messages/processing-{COS_DS}") != first
    again.release(COS_DS)  # stopped before start: processing- goes, submit- stays
    assert _keys(s3, prefix="messages/") == {f"messages/submit-{COS_DS}"}


def test_output_to_a_missing_bucket_is_25_before_and_during_delivery(s3, testdata, tmp_path):
    output = s3mod.S3Output(Uri("s3", f"no-such-bucket-caldp/outputs/{COS_DS}"), Settings.read())
    with pytest.raises(OutputError) as err:
        output.check()
    assert "no-such-bucket-caldp" in str(err.value)
    with pytest.raises(OutputError) as err:
        output.deliver(_products(testdata, tmp_path))


def test_failing_uploads_are_retried_then_25(monkeypatch, s3, testdata, tmp_path):
    s3.create_bucket(Bucket=BUCKET)
    plan = _products(testdata, tmp_path)

    def refuse_puts(method: str, path: str) -> int | None:
        return 500 if method == "PUT" else None

    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"], refuse_puts) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        output = s3mod.S3Output(Uri("s3", f"{BUCKET}/outputs/{COS_DS}"), Settings.read())
        with pytest.raises(OutputError):
            output.deliver(plan)
    attempts: dict[str, int] = {}
    for _method, path, _status in proxy.requests("PUT"):
        attempts[path] = attempts.get(path, 0) + 1  # each part (or object) separately
    assert attempts and max(attempts.values()) == int(os.environ["CALDP_S3_RETRIES"])
    assert _keys(s3) == set()
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []  # aborted


def test_a_transient_upload_failure_is_retried(monkeypatch, s3, tmp_path):
    s3.create_bucket(Bucket=BUCKET)
    work = tmp_path / "work"
    work.mkdir()
    big = work / "j8bt05njq_raw.fits"
    big.write_bytes(__import__("random").Random(5).randbytes(12 * 2**20))
    failed: list[str] = []

    def fail_first_part(method: str, path: str) -> int | None:
        if method == "PUT" and "partNumber=1&" in path + "&" and not failed:
            failed.append(path)
            return 503
        return None

    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"], fail_first_part) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        plan = DeliveryPlan(dataset=parse("j8bt05njq"), products=[big])
        s3mod.S3Output(Uri("s3", f"{BUCKET}/out"), Settings.read()).deliver(plan)
    assert failed
    assert [s for m, p, s in proxy.requests("PUT") if "partNumber=1&" in p + "&"] == [503, 200]
    assert _members(_get(s3, "out/j8bt05njq.tar.gz")) == {
        "j8bt05njq/j8bt05njq_raw.fits": big.read_bytes()
    }


def test_the_write_check_is_one_put_of_the_log_to_be(s3, monkeypatch):
    """No delete, no listing, no HEAD: the job role needs only s3:PutObject for it."""
    s3.create_bucket(Bucket=BUCKET)
    output = s3mod.S3Output(parse_output_uri(f"s3://{BUCKET}/outputs/{COS_DS}"), Settings.read())
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        output.check()
    assert [(m, p) for m, p, _ in proxy.requests()] == [
        ("PUT", f"/{BUCKET}/outputs/{COS_DS}/process.txt")
    ]
    assert _keys(s3) == {f"outputs/{COS_DS}/process.txt"}
    assert "the delivery replaces this" in _get(s3, f"outputs/{COS_DS}/process.txt").decode()

"""Credentials in the environment never reach a log, metrics or message file, locally or on S3.

The runs have AWS credentials (and a MAST token) in their environment, and
``calacs.e`` is wrapped by a program that prints them in several shapes
(``KEY=value``, the bare value, JSON, on stdout and stderr) before running the
stand-in, the way a careless program or library would, and then writes them into
its trailer (``.tra``).  The dataset's ``<ds>_cal_env.txt`` sets a password for
the programs, which the wrapper prints and writes too.  Every byte caldp then
writes -- the delivered tree, the working folder kept after a failure, the
console, every S3 object and every member of the S3 tarballs -- is searched for
each secret value.  The wrapper's lines must be in the log (redacted), so the
leak was really offered.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.support import synthetic
from tests.support.pipeline_helpers import messages, run
from tests.support.s3_fixtures import s3_client, use_fast_retries
from tests.support.standins import STANDIN_DIR

DS = "j8cb01u1q"
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAQ7EXAMPLE3KZ5VW2",
    "AWS_SECRET_ACCESS_KEY": "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",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQDx9aZtoken",
    "AWS_SECURITY_TOKEN": "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQDx9aZtoken",
    "MAST_API_TOKEN": "b5d0c1e6f3a24e7c9d8b7a6f5e4d3c2b",
}
ENV_FILE_SECRETS = {"DB_PASSWORD": "hunter2-from-the-env-file"}
BUCKET = "caldp-secrets-test"


def leaky_calacs(folder: Path) -> Path:
    """A ``calacs.e`` that prints the credentials, then runs the stand-in."""
    folder.mkdir()
    program = folder / "calacs.e"
    program.write_text(
        "#!/bin/sh\n"
        'echo "leaky program: AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID"\n'
        'echo "$AWS_SECRET_ACCESS_KEY"\n'
        'echo "{\\"SessionToken\\": \\"$AWS_SESSION_TOKEN\\", \\"mast\\": \\"$MAST_API_TOKEN\\"}"\n'
        'echo "leaky program: aws_secret_access_key = $AWS_SECRET_ACCESS_KEY" >&2\n'
        'echo "leaky program: env file DB_PASSWORD=$DB_PASSWORD"\n'
        'echo "$DB_PASSWORD"\n'
        f'"{STANDIN_DIR / "calacs.e"}" "$@"\n'
        "status=$?\n"
        f'printf "trailer: %s %s %s\\n" "$AWS_SECRET_ACCESS_KEY" "$DB_PASSWORD" '
        f'"$AWS_ACCESS_KEY_ID" >> {DS}.tra\n'
        'exit "$status"\n'
    )
    program.chmod(0o755)
    return folder


@pytest.fixture
def secret_env(pipeline_env, monkeypatch) -> Path:
    tmp = pipeline_env
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PATH", f"{leaky_calacs(tmp / 'leaky')}:{os.environ['PATH']}")
    synthetic.make_dataset(tmp / "src", DS)
    synthetic.make_cal_env(tmp / "src", DS, [f"{k}={v}" for k, v in ENV_FILE_SECRETS.items()])
    return tmp


def found(data: bytes) -> list[str]:
    every = {**SECRETS, **ENV_FILE_SECRETS}
    return sorted(name for name, value in every.items() if value.encode() in data)


def scan_blob(name: str, data: bytes) -> dict[str, list[str]]:
    """Secrets in a file, and in each member when it is a gzipped tarball."""
    hits = {name: found(data)} if found(data) else {}
    if name.endswith(".tar.gz"):
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
            for member in tar:
                if member.isfile():
                    inner = tar.extractfile(member).read()
                    if found(inner):
                        hits[f"{name}!{member.name}"] = found(inner)
    return hits


def scan_tree(root: Path) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            hits.update(scan_blob(str(path.relative_to(root)), path.read_bytes()))
    return hits


def assert_offered_and_redacted(log_text: str) -> None:
    assert "leaky program: AWS_ACCESS_KEY_ID=***" in log_text
    assert "aws_secret_access_key = ***" in log_text
    assert "leaky program: env file DB_PASSWORD=***" in log_text


def assert_trailer_redacted(text: str) -> None:
    """The trailer got the wrapper's line (the leak was offered), redacted."""
    assert "trailer: *** *** ***" in text, text[-2000:]


@pytest.mark.fault(
    "a program prints credentials and env-file passwords, and writes them in its trailer",
    "*** on the console, in every log and every delivered text file, local and S3",
)
@pytest.mark.parametrize("fail", [False, True], ids=["success", "stage1-failure"])
def test_no_secret_in_local_outputs(secret_env, monkeypatch, capfd, fail):
    tmp = secret_env
    if fail:
        monkeypatch.setenv("CALDP_STANDIN_FAIL", "2")
        monkeypatch.setenv("CALDP_STANDIN_ONLY", "calacs.e")
    out = tmp / "out"
    assert run(DS, tmp / "src", out) == (23 if fail else 0)
    console = capfd.readouterr()

    state = "error-" if fail else "processed-"
    assert [m for m in messages(out) if m.startswith(state)]
    assert scan_tree(out) == {}
    base = out / f"data/acs/{DS}"
    assert_offered_and_redacted((base / "logs/process.txt").read_text())
    if fail:
        with tarfile.open(base / f"{DS}_inputs.tar.gz") as tar:
            trailer = tar.extractfile(f"{DS}/{DS}.tra").read().decode()
    else:
        trailer = (base / f"{DS}.tra").read_text()
    assert_trailer_redacted(trailer)
    assert (base / f"env/{DS}_cal_env.txt").read_text() == "DB_PASSWORD=***\n"
    home = Path(os.environ["CALDP_HOME"])
    assert (home / "caldp-work" / DS).exists() == fail  # kept after the failure
    assert scan_tree(home) == {}
    assert found((console.out + console.err).encode()) == []
    assert "leaky program" in console.err  # the console log saw the lines too


@pytest.mark.s3
def test_no_secret_on_s3(secret_env, aws_env, monkeypatch, capfd):
    s3_storage = pytest.importorskip("caldp.storage.s3")
    if not hasattr(s3_storage, "S3Output"):
        pytest.skip("caldp.storage.s3.S3Output is not there yet")
    tmp = secret_env
    use_fast_retries(monkeypatch)
    for key, value in SECRETS.items():  # aws_env set its own test credentials: use ours
        monkeypatch.setenv(key, value)
    client = s3_client(aws_env)
    client.create_bucket(Bucket=BUCKET)

    assert run(DS, tmp / "src", f"s3://{BUCKET}/outputs/{DS}") == 0
    console = capfd.readouterr()

    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
    assert f"outputs/{DS}/{DS}.tar.gz" in keys and f"messages/processed-{DS}.trigger" in keys
    assert f"outputs/{DS}/process.txt" in keys and f"outputs/{DS}/process_metrics.txt" in keys
    hits: dict[str, list[str]] = {}
    for key in keys:
        hits.update(scan_blob(key, client.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    assert hits == {}
    log_text = client.get_object(Bucket=BUCKET, Key=f"outputs/{DS}/process.txt")["Body"].read()
    assert_offered_and_redacted(log_text.decode())
    tarball = client.get_object(Bucket=BUCKET, Key=f"outputs/{DS}/{DS}.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        assert_trailer_redacted(tar.extractfile(f"{DS}/{DS}.tra").read().decode())
    assert found((console.out + console.err).encode()) == []

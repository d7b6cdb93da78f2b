"""caldp-batch's command line (caldp.batch.cli): on AWS Batch (a real moto server on
127.0.0.1, :mod:`tests.support.batch_fixtures`) and with ``--local`` workers."""

from __future__ import annotations

import io

import pytest

from caldp import sample
from caldp.batch.cli import main, read_datasets
from tests.support.batch_fixtures import (
    BUCKET,
    OOM,
    RuntimeReasons,
    jobs_in,
    lock_text,
    summary_rows,
)

boto3 = pytest.importorskip("boto3")


def test_read_datasets_from_names_files_and_standard_input(tmp_path, monkeypatch):
    """Names validated and normalised, ``#`` comments and blank lines skipped, ``-`` is
    standard input, duplicates dropped where they come again, order kept."""
    listed = tmp_path / "list.txt"
    listed.write_text("# a comment\nJ8BT05NJQ  ldfd01010 # two on a line\n\nacs_8ph_01\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("o4er06llq\nj8bt05njq\n"))
    assert read_datasets(["ldfd01010"], [str(listed), "-"]) == [
        "ldfd01010",
        "j8bt05njq",
        "acs_8ph_01",
        "o4er06llq",
    ]
    with pytest.raises(ValueError, match="not-a-dataset"):
        read_datasets(["not-a-dataset"], [])


# ----------------------------------------------------------------------------- AWS Batch


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


# ----------------------------------------------------------------------------- --local


@pytest.mark.usefixtures("importable_caldp")
def test_cli_local_with_real_caldp_process(tmp_path, monkeypatch, capsys):
    """Real caldp-process workers told to fail their input step: reported, not retried."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    # a CRDS cache, which the default profile checks before the fetch
    monkeypatch.setenv("CRDS_PATH", str(sample.write_crds_cache(tmp_path / "crds")))
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", "21")
    rc = main(
        ["--local", "2", "--input", "file:in", "--output", "file:out", "--workdir", "w"]
        + ["j8bt05njq", "ldfd01010", "j8bt05njq"]
    )
    out = capsys.readouterr().out
    assert rc == 1
    rows = summary_rows(out)
    assert set(rows) == {"j8bt05njq", "ldfd01010"}  # duplicates dropped
    for ds, row in rows.items():
        assert row[1:4] == ["21", "INPUT_TAR_FILE_ERROR", "2G"]
        assert float(row[4]) > 0 and float(row[5]) > 1  # wall seconds, max RSS MB
        assert (tmp_path / "out" / "messages" / f"error-{ds}").is_file()
        assert (tmp_path / "w" / ds / "attempt-1-2G" / "caldp-process.log").is_file()
    assert out.splitlines()[-1] == "0 of 2 datasets succeeded"


def test_cli_local_bad_command_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--local", "0", "j8bt05njq"]) == 2
    assert main(["--local", "1", "--ladder", "8,2", "j8bt05njq"]) == 2
    assert main(["--local", "1", "not-a-dataset"]) == 2
    assert main(["--local", "1", "--datasets-file", str(tmp_path / "missing.txt")]) == 2
    assert not (tmp_path / "caldp-batch-work").exists()
    capsys.readouterr()


def test_cli_reads_a_datasets_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("# a comment\nj8bt05njq  ldfd01010\n\nnot-a-dataset # no\n")
    assert main(["--local", "1", "-f", "list.txt"]) == 2
    assert "not-a-dataset" in capsys.readouterr().err

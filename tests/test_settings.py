"""Numbers from the environment: one table, one rule, refused at the command line."""

from __future__ import annotations

import os

import pytest

from caldp import settings
from caldp.exit_codes import ExitCode
from caldp.settings import NUMBERS, SettingsError
from caldp.storage import astroquery, s3_client, tarball
from tests.support.pipeline_helpers import run


def test_defaults_when_unset_or_empty():
    assert settings.number("CALDP_S3_THREADS", {}) == 4
    assert settings.number("CALDP_S3_THREADS", {"CALDP_S3_THREADS": " "}) == 4
    assert settings.number("CALDP_MAX_TAR_BYTES", {}) == 200 * 2**30
    assert settings.number("CALDP_S3_RETRY_SECONDS", {"CALDP_S3_RETRY_SECONDS": "0.5"}) == 0.5


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("CALDP_S3_THREADS", "four", "CALDP_S3_THREADS='four' is not a whole number"),
        ("CALDP_MAX_TAR_BYTES", "200G", "CALDP_MAX_TAR_BYTES='200G' is not a whole number"),
        ("CALDP_S3_RETRIES", "0", "CALDP_S3_RETRIES='0' is out of range"),
        ("CALDP_S3_GZIP_LEVEL", "12", "from 0 to 9"),
        ("CALDP_ASTROQUERY_RETRY_SECONDS", "-1", "at least 0.0"),
        ("CALDP_REFERENCE_RETRY_SECONDS", "soon", "is not a number"),
    ],
)
def test_bad_values_name_the_variable(name, value, words):
    with pytest.raises(SettingsError, match=words.replace("(", r"\(")):
        settings.number(name, {name: value})
    with pytest.raises(SettingsError, match=name):
        settings.check({name: value})


def test_every_part_reads_the_settings_it_is_given(monkeypatch):
    """The parts read the run's settings, not the environment as it is when they run."""
    given = settings.Settings.read(
        {
            "CALDP_S3_RETRIES": "7",
            "CALDP_S3_RETRY_SECONDS": "0.25",
            "CALDP_ASTROQUERY_RETRIES": "5",
            "CALDP_ASTROQUERY_RETRY_SECONDS": "0.5",
            "CALDP_MAX_TAR_BYTES": "12345",
            "CALDP_MAST_SERVER": "http://mast.example/",
            "AWS_MAX_ATTEMPTS": "6",
            "AWS_RETRY_MODE": "adaptive",
        }
    )
    for name in ("CALDP_S3_RETRIES", "CALDP_MAX_TAR_BYTES", "AWS_MAX_ATTEMPTS"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("CALDP_MAST_SERVER", "http://elsewhere.example")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    policy = s3_client.retry_policy(given)
    assert (policy.attempts, policy.first_wait) == (7, 0.25)
    policy = astroquery.retry_policy(given)
    assert (policy.attempts, policy.first_wait) == (5, 0.5)
    assert tarball.byte_limit(given) == 12345
    assert astroquery.mast_server(given) == "http://mast.example"
    retries = s3_client.make_client(given).meta.config.retries
    assert (retries["total_max_attempts"], retries["mode"]) == (6, "adaptive")
    assert (
        s3_client.retry_policy(settings.Settings()).attempts == NUMBERS["CALDP_S3_RETRIES"].default
    )
    assert set(NUMBERS) >= {"CALDP_S3_THREADS", "CALDP_MAX_TAR_BYTES", "AWS_MAX_ATTEMPTS"}


@pytest.mark.parametrize(
    "name, value", [("CALDP_S3_THREADS", "four"), ("CALDP_MAX_TAR_BYTES", "200G")]
)
def test_caldp_process_refuses_them_with_exit_2(pipeline_env, monkeypatch, caplog, name, value):
    monkeypatch.setenv(name, value)
    out = pipeline_env / "out"
    assert run("j8cb01u1q", pipeline_env, out) == ExitCode.CMDLINE_ERROR
    assert name in caplog.text
    assert not out.exists()  # nothing started


def test_settings_are_read_once_and_frozen(monkeypatch):
    monkeypatch.setenv("CALDP_S3_THREADS", "6")
    read = settings.Settings.read()
    monkeypatch.setenv("CALDP_S3_THREADS", "8")
    assert read.number("CALDP_S3_THREADS") == 6
    with pytest.raises(TypeError):
        read.environ["CALDP_S3_THREADS"] = "9"  # type: ignore[index]
    with pytest.raises(SettingsError, match="CALDP_S3_THREADS"):
        settings.Settings.read({"CALDP_S3_THREADS": "many"})


def test_added_values_reach_children_and_crds_only(monkeypatch):
    monkeypatch.delenv("CALDP_TEST_ADDED", raising=False)
    monkeypatch.setenv("CALDP_TEST_KEPT", "user")
    base = settings.Settings.read()
    added = base.adding({"CALDP_TEST_ADDED": "profile", "CALDP_TEST_KEPT": "profile"})
    assert base.get("CALDP_TEST_ADDED") == ""  # the original is unchanged
    assert added.child_environ({"jref": "/refs/"})["CALDP_TEST_ADDED"] == "profile"
    assert added.child_environ({"jref": "/refs/"})["jref"] == "/refs/"
    assert "CALDP_TEST_ADDED" not in os.environ
    with added.exported():
        assert os.environ["CALDP_TEST_ADDED"] == "profile"
        assert os.environ["CALDP_TEST_KEPT"] == "profile"
    assert "CALDP_TEST_ADDED" not in os.environ
    assert os.environ["CALDP_TEST_KEPT"] == "user"
    with pytest.raises(SettingsError, match="CALDP_S3_RETRIES"):
        base.adding({"CALDP_S3_RETRIES": "0"})

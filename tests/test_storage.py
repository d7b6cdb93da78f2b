"""The storage-scheme registry: URIs, backends, and a new scheme as one entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from caldp import storage
from caldp.cli import build_parser
from caldp.errors import DownloadError
from caldp.exit_codes import ExitCode
from caldp.settings import Settings
from caldp.storage import SCHEMES, Scheme, Uri, UriError, parse_input_uri, parse_output_uri
from tests.support import synthetic
from tests.support.pipeline_helpers import messages, run, tree


@pytest.mark.parametrize(
    "text, uri",
    [
        ("file:", Uri("file", ".")),
        ("file:in/put", Uri("file", "in/put")),
        ("s3://bucket/a/b/", Uri("s3", "bucket/a/b")),
        ("astroquery:", Uri("astroquery", "")),
        ("astroquery:s3://b/p", Uri("astroquery", "s3://b/p")),
    ],
)
def test_input_uris(text, uri):
    assert parse_input_uri(text) == uri


def test_output_uris():
    assert parse_output_uri("none") == Uri("none", "")
    assert parse_output_uri("s3://b") == Uri("s3", "b")
    with pytest.raises(UriError, match="expected file:DIR, s3://bucket/prefix, none"):
        parse_output_uri("astroquery:")  # not an output


@pytest.mark.parametrize("text", ["http://x", "ftp:x", "S3://b", "s3://", "s3:///b", "mem:x"])
def test_unknown_or_bad_inputs_are_refused(text):
    with pytest.raises(UriError):
        parse_input_uri(text)


def test_every_scheme_names_its_backends():
    for scheme in SCHEMES.values():
        assert scheme.inputs or scheme.output, scheme.name
        if scheme.inputs:
            assert callable(storage.input_backend(Uri(scheme.name, "")).fetch)
            assert scheme.fetch_code != ExitCode.SUCCESS
        if scheme.output:
            assert callable(storage.open_output(Uri(scheme.name, "."), Settings()).deliver)


def test_an_unknown_scheme_is_a_command_line_error(pipeline_env):
    out = pipeline_env / "out"
    assert run("j8cb01u1q", "mem:anything", out) == ExitCode.CMDLINE_ERROR
    assert not out.exists()


# ----------------------------------------------------------- a made-up scheme

STORE: dict[str, Path] = {}  # mem:<name> -> a folder standing in for the store


def fetch(location: str, dataset, dest: Path, settings: Settings) -> list[Path]:  # noqa: ARG001
    """The backend of the made-up ``mem:`` scheme (this module is it)."""
    if location not in STORE:
        raise DownloadError(f"mem:{location} holds nothing")
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, dest)) for p in sorted(STORE[location].iterdir())]


MEM = Scheme(
    "mem",
    "mem:",
    "mem:NAME",
    str,
    inputs=__name__,
    fetch_code=ExitCode.S3_DOWNLOAD_ERROR,
)


@pytest.fixture
def mem_scheme(monkeypatch):
    monkeypatch.setitem(SCHEMES, "mem", MEM)
    STORE.clear()
    yield STORE
    STORE.clear()


def test_a_registered_scheme_runs_through_the_whole_pipeline(pipeline_env, mem_scheme):
    src = pipeline_env / "store"
    synthetic.make_dataset(src, "j8cb01u1q")
    mem_scheme["visit"] = src
    out = pipeline_env / "out"
    assert run("j8cb01u1q", "mem:visit", out) == 0
    assert messages(out) == ["processed-j8cb01u1q.trigger"]
    assert "j8cb01u1q_flt.fits" in tree(out / "data" / "acs" / "j8cb01u1q")
    assert "mem:NAME" in build_parser().format_help()  # the help names it too


def test_a_registered_schemes_fetch_failure_is_its_fetch_code(pipeline_env, mem_scheme):
    out = pipeline_env / "out"
    assert run("j8cb01u1q", "mem:empty", out) == ExitCode.S3_DOWNLOAD_ERROR
    assert messages(out) == ["error-j8cb01u1q"]

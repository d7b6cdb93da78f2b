"""CRDS rules and references from S3, against a real moto server and the real CRDS cache."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from caldp import crds_s3
from caldp.exit_codes import ExitCode
from caldp.sysexit import CaldpError
from tests.s3_fixtures import RecordingProxy, s3_client, use_fast_retries

pytestmark = pytest.mark.s3

CRDS_BUCKET = "caldp-crds-test"
REFERENCE = "v8q14451j_idc.fits"


@pytest.fixture
def s3(aws_env, monkeypatch):
    use_fast_retries(monkeypatch)
    return s3_client(aws_env)


def _files(root: Path, sub: str) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p for p in sorted((root / sub).rglob("*")) if p.is_file()
    }


def _mirror(s3, crds_cache: Path, subs: tuple[str, ...]) -> str:
    s3.create_bucket(Bucket=CRDS_BUCKET)
    files = {}
    for sub in subs:
        files |= _files(crds_cache, sub)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda item: s3.put_object(
                    Bucket=CRDS_BUCKET, Key=item[0], Body=item[1].read_bytes()
                ),
                files.items(),
            )
        )
    return CRDS_BUCKET


@pytest.fixture
def crds_bucket(s3, crds_cache) -> str:
    """The real test CRDS cache mirrored into a moto bucket (config, mappings, references)."""
    return _mirror(s3, crds_cache, ("config/hst", "mappings/hst", "references/hst"))


@pytest.fixture
def refs_bucket(s3, crds_cache) -> str:
    """Only the real reference files in a moto bucket."""
    return _mirror(s3, crds_cache, ("references/hst",))


def test_prepare_cache_fills_an_empty_cache_that_crds_can_use(
    crds_bucket, crds_cache, tmp_path, monkeypatch
):
    cache = tmp_path / "crds_cache"
    crds_s3.prepare_cache(f"s3://{crds_bucket}", cache)
    for sub in ("config/hst", "mappings/hst"):
        expected = _files(crds_cache, sub)
        got = _files(cache, sub)
        assert sorted(got) == sorted(expected)
        for name, path in got.items():
            assert path.read_bytes() == expected[name].read_bytes()
    assert not (cache / "references").exists()  # references come one by one, when needed
    # CRDS itself loads the whole context from the prepared cache, offline.
    monkeypatch.setenv("CRDS_PATH", str(cache))
    monkeypatch.setenv("CRDS_READONLY_CACHE", "1")
    monkeypatch.setenv("CRDS_SERVER_URL", "https://127.0.0.1:9")
    import crds

    pmap = crds.get_cached_mapping("hst_0729.pmap")
    assert len(pmap.mapping_names()) == len(_files(crds_cache, "mappings/hst"))


def test_prepare_cache_keeps_what_is_there(crds_bucket, tmp_path, monkeypatch):
    cache = tmp_path / "crds_cache"
    kept = cache / "config" / "hst" / "bad_files.txt"
    kept.parent.mkdir(parents=True)
    kept.write_text("local copy\n")
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        crds_s3.prepare_cache(crds_bucket, cache)
        first = len(proxy.requests("GET"))
        crds_s3.prepare_cache(crds_bucket, cache)
        second = len(proxy.requests("GET")) - first
    assert kept.read_text() == "local copy\n"
    assert (cache / "config" / "hst" / "server_config").is_file()
    assert second == 2  # only the two listings: nothing downloaded again


def test_prepare_cache_from_a_bucket_without_a_cache_is_27(s3, tmp_path):
    s3.create_bucket(Bucket="caldp-empty-crds")
    with pytest.raises(CaldpError) as err:
        crds_s3.prepare_cache("caldp-empty-crds", tmp_path / "cache")
    assert err.value.exit_code == ExitCode.BESTREFS_ERROR
    with pytest.raises(CaldpError) as err:
        crds_s3.prepare_cache("no-such-crds-bucket", tmp_path / "cache")
    assert err.value.exit_code == ExitCode.BESTREFS_ERROR


def _prepared(crds_cache: Path, tmp_path: Path) -> Path:
    """A local cache with the real config and mappings (as prepare_cache makes it)."""
    cache = tmp_path / "crds_cache"
    for sub in ("config/hst", "mappings/hst"):
        shutil.copytree(crds_cache / sub, cache / sub)
    return cache


def test_fetch_a_good_reference(refs_bucket, crds_cache, tmp_path, monkeypatch):
    cache = _prepared(crds_cache, tmp_path)
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        paths = crds_s3.fetch_references(refs_bucket, cache, [f"jref${REFERENCE}"])
        assert paths == [cache / "references" / "hst" / REFERENCE]
        assert paths[0].read_bytes() == (crds_cache / "references" / "hst" / REFERENCE).read_bytes()
        gets = len(proxy.requests("GET"))
        assert crds_s3.fetch_references(refs_bucket, cache, [REFERENCE]) == paths
        assert len(proxy.requests("GET")) == gets  # verified in the cache: not fetched again
    assert sorted(p.name for p in paths[0].parent.iterdir()) == [REFERENCE]  # no temp files


def _replace_reference(s3, data: bytes) -> None:
    s3.put_object(Bucket=CRDS_BUCKET, Key=f"references/hst/{REFERENCE}", Body=data)


@pytest.mark.parametrize("damage", ["size", "sha1"])
def test_a_bad_reference_is_retried_then_27(
    damage, refs_bucket, crds_cache, s3, tmp_path, monkeypatch
):
    cache = _prepared(crds_cache, tmp_path)
    good = (crds_cache / "references" / "hst" / REFERENCE).read_bytes()
    bad = good[:-100] if damage == "size" else good[:-1] + bytes([good[-1] ^ 0xFF])
    _replace_reference(s3, bad)
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        with pytest.raises(CaldpError) as err:
            crds_s3.fetch_references(refs_bucket, cache, [REFERENCE])
    assert err.value.exit_code == ExitCode.BESTREFS_ERROR
    assert damage in str(err.value)
    gets = [r for r in proxy.requests("GET") if r[1].endswith(REFERENCE)]
    assert len(gets) == int(os.environ["CALDP_REFERENCE_RETRIES"])
    assert not (cache / "references" / "hst").exists() or not any(
        (cache / "references" / "hst").iterdir()
    )


def test_a_transient_failure_is_retried(refs_bucket, crds_cache, tmp_path, monkeypatch):
    cache = _prepared(crds_cache, tmp_path)
    refused: list[str] = []

    def refuse_once(method: str, path: str) -> int | None:
        if path.endswith(REFERENCE) and not refused:
            refused.append(path)
            return 503
        return None

    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"], refuse_once) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        paths = crds_s3.fetch_references(refs_bucket, cache, [REFERENCE])
    assert refused
    assert [s for _m, p, s in proxy.requests() if p.endswith(REFERENCE)][0] == 503
    assert paths[0].read_bytes() == (crds_cache / "references" / "hst" / REFERENCE).read_bytes()


def test_a_bad_cached_reference_is_fetched_again(refs_bucket, crds_cache, tmp_path):
    cache = _prepared(crds_cache, tmp_path)
    local = cache / "references" / "hst" / REFERENCE
    local.parent.mkdir(parents=True)
    local.write_bytes(b"not the reference")
    crds_s3.fetch_references(refs_bucket, cache, [REFERENCE])
    assert local.read_bytes() == (crds_cache / "references" / "hst" / REFERENCE).read_bytes()


def test_missing_or_unknown_references_are_27(refs_bucket, crds_cache, tmp_path):
    cache = _prepared(crds_cache, tmp_path)
    # Known to CRDS (it has a size and sha1) but not in the bucket: no bias files are.
    with pytest.raises(CaldpError) as err:
        crds_s3.fetch_references(refs_bucket, cache, ["m4r1753rj_bia.fits"])
    assert err.value.exit_code == ExitCode.BESTREFS_ERROR
    assert "m4r1753rj_bia.fits" in str(err.value)
    with pytest.raises(CaldpError) as err:
        crds_s3.fetch_references(refs_bucket, cache, ["zzzzzzzzz_bia.fits"])
    assert err.value.exit_code == ExitCode.BESTREFS_ERROR
    assert "download_metadata" in str(err.value)


def test_pinned_context(s3):
    s3.create_bucket(Bucket="caldp-outputs")
    assert crds_s3.pinned_context("caldp-outputs") is None
    s3.put_object(Bucket="caldp-outputs", Key="crds_env_vars/hst_0729.pmap", Body=b"")
    s3.put_object(Bucket="caldp-outputs", Key="crds_env_vars/README", Body=b"x")
    assert crds_s3.pinned_context("caldp-outputs") == "hst_0729.pmap"
    assert crds_s3.pinned_context("s3://caldp-outputs") == "hst_0729.pmap"
    with pytest.raises(CaldpError) as err:
        crds_s3.pinned_context("no-such-bucket-caldp")
    assert err.value.exit_code == ExitCode.BESTREFS_ERROR

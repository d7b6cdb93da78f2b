"""CRDS rules and references from S3, against a real moto server and the real CRDS cache."""

from __future__ import annotations

import gzip
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from caldp import bestrefs, crds_s3
from caldp.errors import ReferencesError
from caldp.settings import Settings
from tests.support.s3_fixtures import RecordingProxy

pytestmark = pytest.mark.s3

CRDS_BUCKET = "caldp-crds-test"
REFERENCE = "v8q14451j_idc.fits"
CONTEXT = "hst_0729.pmap"


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


def listings(proxy: RecordingProxy) -> list[tuple[str, str, int]]:
    """Requests other than GETs and HEADs of objects (listings are GETs of a bucket)."""
    return [
        r
        for r in proxy.requests()
        if r[0] not in ("GET", "HEAD") or r[1].split("?")[0].strip("/").count("/") < 1
    ]


def _mappings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_config_and_rules_by_name_for_the_inputs_instruments(
    crds_bucket, crds_cache, tmp_path, monkeypatch
):
    cache = tmp_path / "crds_cache"
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        crds_s3.prepare_config(f"s3://{crds_bucket}", cache, Settings.read())
        where = crds_s3.prepare_rules(
            f"s3://{crds_bucket}", cache, CONTEXT, ["COS"], Settings.read()
        )
        first = len(proxy.requests())
        crds_s3.prepare_rules(f"s3://{crds_bucket}", cache, CONTEXT, ["COS"], Settings.read())
        again = len(proxy.requests()) - first
    assert where == f"s3://{crds_bucket}/mappings/hst/"
    assert listings(proxy) == []
    assert again == 0  # the rules are in the cache now
    config = cache / "config" / "hst" / "server_config"
    assert config.read_bytes() == (crds_cache / "config" / "hst" / "server_config").read_bytes()
    got = _mappings(cache / "mappings" / "hst")
    assert CONTEXT in got and "hst_cos_0306.imap" in got and "hst_acs_0421.imap" not in got
    assert all(n.startswith(("hst_0729", "hst_cos_")) for n in got)
    assert len(got) < len(_mappings(crds_cache / "mappings" / "hst")) / 4
    assert not (cache / "references").exists()  # references come one by one, when needed


def _use_cache(monkeypatch, cache: Path) -> None:
    monkeypatch.setenv("CRDS_PATH", str(cache))
    monkeypatch.setenv("CRDS_READONLY_CACHE", "0")
    monkeypatch.setenv("CRDS_SERVER_URL", "https://hst-serverless-mode.stsci.edu")


def test_crds_assigns_references_with_the_rules_fetched(
    crds_bucket, testdata, tmp_path, monkeypatch
):
    cache = tmp_path / "crds_cache"
    _use_cache(monkeypatch, cache)
    raw = tmp_path / "lb4l02m2q_rawacq.fits"
    raw.write_bytes(gzip.decompress((testdata / "cos" / "acq" / f"{raw.name}.gz").read_bytes()))
    crds_s3.prepare_config(crds_bucket, cache, Settings.read())
    crds_s3.prepare_rules(crds_bucket, cache, CONTEXT, bestrefs.instruments([raw]), Settings.read())
    result = bestrefs.run([raw], cache, CONTEXT, sync=False)
    assert result.references and set(result.references.values()) == {"lref"}


@pytest.fixture
def seed_bucket(s3, crds_cache, monkeypatch) -> str:
    """A bucket laid out as the earlier implementation used it: config/hst/,
    pickles/hst/<context>.pkl and references/hst/, no mappings."""
    import pickle

    import crds

    _mirror(s3, crds_cache, ("config/hst", "references/hst"))
    with monkeypatch.context() as env:
        _use_cache(env, crds_cache)
        env.setenv("CRDS_READONLY_CACHE", "1")
        context = crds.get_cached_mapping(CONTEXT)
        context.force_load()
    s3.put_object(Bucket=CRDS_BUCKET, Key=f"pickles/hst/{CONTEXT}.pkl", Body=pickle.dumps(context))
    return CRDS_BUCKET


def test_a_bucket_with_pickles_and_no_mappings(
    seed_bucket, testdata, tmp_path, monkeypatch, crds_cache
):
    cache = tmp_path / "crds_cache"
    _use_cache(monkeypatch, cache)
    monkeypatch.setenv("CRDS_USE_PICKLED_CONTEXTS", "1")
    raw = tmp_path / "lb4l02m2q_rawacq.fits"
    raw.write_bytes(gzip.decompress((testdata / "cos" / "acq" / f"{raw.name}.gz").read_bytes()))
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        crds_s3.prepare_config(seed_bucket, cache, Settings.read())
        where = crds_s3.prepare_rules(seed_bucket, cache, CONTEXT, ["COS"], Settings.read())
    assert where == f"s3://{seed_bucket}/pickles/hst/{CONTEXT}.pkl"
    assert listings(proxy) == []
    assert (cache / "pickles" / "hst" / f"{CONTEXT}.pkl").is_file()
    assert not (cache / "mappings" / "hst").exists()
    result = bestrefs.run([raw], cache, CONTEXT, sync=False)
    assert set(result.references.values()) == {"lref"}


def test_a_bucket_without_rules_is_27(s3, crds_cache, tmp_path):
    _mirror(s3, crds_cache, ("config/hst",))
    cache = tmp_path / "cache"
    crds_s3.prepare_config(CRDS_BUCKET, cache, Settings.read())
    with pytest.raises(ReferencesError) as err:
        crds_s3.prepare_rules(CRDS_BUCKET, cache, CONTEXT, ["COS"], Settings.read())
    assert "neither its rules nor its pickle" in str(err.value)
    for bucket in ("caldp-empty-crds", "no-such-crds-bucket"):
        if bucket == "caldp-empty-crds":
            s3.create_bucket(Bucket=bucket)
        with pytest.raises(ReferencesError) as err:
            crds_s3.prepare_config(bucket, tmp_path / "cache2", Settings.read())


def test_a_damaged_mapping_is_27_and_not_kept(crds_bucket, s3, crds_cache, tmp_path):
    name = "hst_cos_0306.imap"
    text = (crds_cache / "mappings" / "hst" / name).read_text()
    s3.put_object(Bucket=CRDS_BUCKET, Key=f"mappings/hst/{name}", Body=text.replace("'", '"', 9))
    cache = tmp_path / "crds_cache"
    crds_s3.prepare_config(crds_bucket, cache, Settings.read())
    with pytest.raises(ReferencesError) as err:
        crds_s3.prepare_rules(crds_bucket, cache, CONTEXT, ["COS"], Settings.read())
    assert name in str(err.value)
    assert not (cache / "mappings" / "hst" / name).exists()


def _prepared(crds_cache: Path, tmp_path: Path) -> Path:
    """A local cache with the real config (a flat cache) and mappings."""
    cache = tmp_path / "crds_cache"
    for sub in ("config/hst", "mappings/hst"):
        shutil.copytree(crds_cache / sub, cache / sub)
    return cache


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "no-marker"])
def test_fetch_a_good_reference(refs_bucket, crds_cache, tmp_path, monkeypatch, flat):
    cache = _prepared(crds_cache, tmp_path)
    if not flat:  # as prepare_config leaves a fresh cache: CRDS's default layout
        (cache / "config" / "hst" / "ref_cache_subdir_mode").unlink()
    folder = cache / "references" / "hst" / ("" if flat else "acs")
    with RecordingProxy(os.environ["AWS_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        paths = crds_s3.fetch_references(refs_bucket, cache, {REFERENCE: "jref"}, Settings.read())
        assert paths == [folder / REFERENCE]
        assert bestrefs.locate({REFERENCE: "jref"}, cache).dirs["jref"] == f"{folder}/"
        assert listings(proxy) == []
        assert paths[0].read_bytes() == (crds_cache / "references" / "hst" / REFERENCE).read_bytes()
        gets = len(proxy.requests("GET"))
        assert (
            crds_s3.fetch_references(refs_bucket, cache, {REFERENCE: "jref"}, Settings.read())
            == paths
        )
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
        with pytest.raises(ReferencesError) as err:
            crds_s3.fetch_references(refs_bucket, cache, {REFERENCE: "jref"}, Settings.read())
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
        paths = crds_s3.fetch_references(refs_bucket, cache, {REFERENCE: "jref"}, Settings.read())
    assert refused
    assert [s for _m, p, s in proxy.requests() if p.endswith(REFERENCE)][0] == 503
    assert paths[0].read_bytes() == (crds_cache / "references" / "hst" / REFERENCE).read_bytes()


def test_a_bad_cached_reference_is_fetched_again(refs_bucket, crds_cache, tmp_path):
    cache = _prepared(crds_cache, tmp_path)
    local = cache / "references" / "hst" / REFERENCE
    local.parent.mkdir(parents=True)
    local.write_bytes(b"not the reference")
    crds_s3.fetch_references(refs_bucket, cache, {REFERENCE: "jref"}, Settings.read())
    assert local.read_bytes() == (crds_cache / "references" / "hst" / REFERENCE).read_bytes()


def test_missing_or_unknown_references_are_27(refs_bucket, crds_cache, tmp_path):
    cache = _prepared(crds_cache, tmp_path)
    # Known to CRDS (it has a size and sha1) but not in the bucket: no bias files are.
    with pytest.raises(ReferencesError) as err:
        crds_s3.fetch_references(
            refs_bucket, cache, {"m4r1753rj_bia.fits": "jref"}, Settings.read()
        )
    assert "m4r1753rj_bia.fits" in str(err.value)
    with pytest.raises(ReferencesError) as err:
        crds_s3.fetch_references(
            refs_bucket, cache, {"zzzzzzzzz_bia.fits": "jref"}, Settings.read()
        )
    assert "download_metadata" in str(err.value)


def test_pinned_context(s3):
    s3.create_bucket(Bucket="caldp-outputs")
    assert crds_s3.pinned_context("caldp-outputs", Settings.read()) is None
    s3.put_object(Bucket="caldp-outputs", Key="crds_env_vars/hst_0729.pmap", Body=b"")
    s3.put_object(Bucket="caldp-outputs", Key="crds_env_vars/README", Body=b"x")
    assert crds_s3.pinned_context("caldp-outputs", Settings.read()) == "hst_0729.pmap"
    assert crds_s3.pinned_context("s3://caldp-outputs", Settings.read()) == "hst_0729.pmap"
    with pytest.raises(ReferencesError):
        crds_s3.pinned_context("no-such-bucket-caldp", Settings.read())

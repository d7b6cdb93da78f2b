import pytest

from caldp.config import PROFILES, ProfileError, apply_profile, get_profile


def test_profiles_exist():
    assert set(PROFILES) == {
        "caldp-config-onsite",
        "caldp-config-offsite",
        "caldp-config-aws",
        "caldp-config-local",
    }


def test_onsite_is_readonly_flat_cache_without_server():
    env = {"HOME": "/home/u"}
    apply_profile(get_profile("caldp-config-onsite"), env)
    assert env["CRDS_PATH"] == "/grp/crds/cache"
    assert env["CRDS_READONLY_CACHE"] == "1"
    assert "serverless" in env["CRDS_SERVER_URL"]


def test_local_defaults_to_home_cache_and_never_syncs():
    env = {"HOME": "/home/u"}
    profile = get_profile("caldp-config-local")
    apply_profile(profile, env)
    assert env["CRDS_PATH"] == "/home/u/crds_cache"
    assert env["CRDS_READONLY_CACHE"] == "1"
    assert not profile.sync_references and not profile.references_from_s3


def test_user_values_win():
    env = {"HOME": "/home/u", "CRDS_PATH": "/mine", "CRDS_READONLY_CACHE": "0"}
    applied = apply_profile(get_profile("caldp-config-local"), env)
    assert env["CRDS_PATH"] == "/mine" and env["CRDS_READONLY_CACHE"] == "0"
    assert "CRDS_PATH" not in applied


def test_aws_profile_fetches_from_s3_with_retries():
    env = {"HOME": "/h"}
    profile = get_profile("caldp-config-aws")
    apply_profile(profile, env)
    assert profile.references_from_s3
    assert env["CALDP_REFERENCE_RETRIES"] == "4"
    assert env["CALDP_REFERENCE_RETRY_SECONDS"] == "10"


def test_unknown_profile():
    with pytest.raises(ProfileError, match="caldp-config-onsite"):
        get_profile("caldp-config-mars")

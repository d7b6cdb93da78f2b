"""Configuration profiles: where CRDS finds its cache and whether it may talk to a server.

A profile is a set of environment defaults.  Values the user already set in the
environment win over a profile's defaults.  The shell versions in ``scripts/``
(for sourcing in a terminal or a container) hold the same values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

SERVERLESS_URL = "https://hst-serverless-mode.stsci.edu"
OPS_SERVER_URL = "https://hst-crds.stsci.edu"
DEFAULT_PROFILE = "caldp-config-onsite"


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    defaults: Mapping[str, str] = field(default_factory=dict)
    sync_references: bool = False  # let CRDS download missing references from its server
    references_from_s3: bool = False  # fetch references from $CRDSBUCKET with size/sha1 checks

    def defaults_for(self, env: Mapping[str, str]) -> dict[str, str]:
        """Defaults with ``~`` and ``$VAR`` expanded against ``env``."""
        home = env.get("HOME", os.path.expanduser("~"))
        out = {}
        for key, value in self.defaults.items():
            if value.startswith("~/"):
                value = os.path.join(home, value[2:])
            out[key] = value
        return out


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "caldp-config-onsite",
            "read-only flat CRDS cache at /grp/crds/cache, no server",
            {
                "CRDS_PATH": "/grp/crds/cache",
                "CRDS_READONLY_CACHE": "1",
                "CRDS_SERVER_URL": SERVERLESS_URL,
                "CRDS_OBSERVATORY": "hst",
            },
        ),
        Profile(
            "caldp-config-offsite",
            "read-write CRDS cache at $CRDS_PATH or ~/crds_cache, synced from the CRDS server",
            {
                "CRDS_PATH": "~/crds_cache",
                "CRDS_READONLY_CACHE": "0",
                "CRDS_SERVER_URL": OPS_SERVER_URL,
                "CRDS_OBSERVATORY": "hst",
            },
            sync_references=True,
        ),
        Profile(
            "caldp-config-aws",
            "CRDS cache at ~/crds_cache, references fetched from $CRDSBUCKET on S3 with checks",
            {
                "CRDS_PATH": "~/crds_cache",
                "CRDS_READONLY_CACHE": "0",
                "CRDS_SERVER_URL": SERVERLESS_URL,
                "CRDS_OBSERVATORY": "hst",
                "CRDS_USE_PICKLED_CONTEXTS": "1",  # a bucket without mappings/hst/ has pickles/hst/
                "CALDP_REFERENCE_RETRIES": "4",
                "CALDP_REFERENCE_RETRY_SECONDS": "10",
            },
            references_from_s3=True,
        ),
        Profile(
            "caldp-config-local",
            "local CRDS cache at $CRDS_PATH or ~/crds_cache, read-only, never contacting a server",
            {
                "CRDS_PATH": "~/crds_cache",
                "CRDS_READONLY_CACHE": "1",
                "CRDS_SERVER_URL": SERVERLESS_URL,
                "CRDS_OBSERVATORY": "hst",
            },
        ),
    )
}


class ProfileError(ValueError):
    pass


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ProfileError(f"unknown configuration profile {name!r}; known: {known}") from None


def apply_profile(profile: Profile, env: MutableMapping[str, str]) -> dict[str, str]:
    """Set the profile's defaults in ``env`` where the user has not set them.

    Returns the values that the profile set (for the log; none of them is secret).
    """
    applied = {}
    for key, value in profile.defaults_for(env).items():
        if key not in env or env[key] == "":
            env[key] = value
            applied[key] = value
    return applied

"""The filter table: pivot wavelengths of ACS and WFC3 filters (caldp.previews.filters)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from caldp.previews import filters
from tests.conftest import require_testdata


def tpn_values(name: str, keyword: str) -> set[str]:
    """Allowed values of a keyword in a CRDS .tpn file of the installed crds package."""
    import crds

    tpn = Path(crds.__file__).parent / "hst" / "tpns" / name
    text = tpn.read_text().replace("\\\n", "")
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == keyword:
            return {v.strip() for v in "".join(fields[4:]).split(",") if v.strip()}
    raise AssertionError(f"{keyword} not in {tpn}")


# Names in CRDS rules that are not ACS filters of the Instrument Handbook (no flight use).
NOT_IN_HANDBOOK = {"F410W", "F220M", "FR555N"}


def test_every_acs_filter_of_crds_has_a_pivot():
    allowed = tpn_values("acs_pfl.tpn", "FILTER1") | tpn_values("acs_pfl.tpn", "FILTER2")
    assert {"F435W", "F814W", "F115LP", "FR656N", "POL60V"} <= allowed
    wanted = {f for f in allowed if filters.is_bandpass(f)} - NOT_IN_HANDBOOK
    missing = sorted(f for f in wanted if filters.pivot_wavelength("ACS", "WFC", f) is None)
    assert missing == []


def test_every_synphot_filter_of_acs_and_wfc3_has_a_pivot():
    mapping = (
        require_testdata() / "crds-cache" / "mappings" / "hst" / "hst_synphot_thruput_0004.rmap"
    )
    text = mapping.read_text()
    components = set(re.findall(r"'((?:ACS|WFC3_UVIS|WFC3_IR)_[A-Z0-9_]+)'", text))
    checked = 0
    for component in components:
        instrument, _, rest = component.partition("_")
        if instrument == "WFC3":
            detector, _, name = rest.partition("_")
        elif rest in ("POL_UV", "POL_V"):
            detector, name = "WFC", rest
        else:
            detector, name = "WFC", rest.split("_")[0]
        # filters, ramps, grisms, prisms, polarizers; not detectors, apertures, mirrors,
        # windows, blocking filters, nor the per-chip variants (F200LPF1) of WFC3/UVIS
        if not re.fullmatch(r"F[QR]?\d{3,4}[A-Z]{1,2}|G\d{3,4}L?|PR\d{3}L|POL_UV|POL_V", name):
            continue
        if name in NOT_IN_HANDBOOK:
            continue
        checked += 1
        assert filters.pivot_wavelength(instrument, detector, name) is not None, component
    assert checked > 120


def test_pivot_lookup_rules():
    wfc = [filters.pivot_wavelength("ACS", "WFC", f) for f in ("F435W", "F606W", "F814W")]
    assert wfc == sorted(wfc) and 4000 < wfc[0] < 4500 and 7900 < wfc[2] < 8200
    assert filters.pivot_wavelength("ACS", "WFC", "F220W") == pytest.approx(2255.4)  # HRC value
    assert filters.pivot_wavelength("wfc3", "ir", "f160w") == pytest.approx(15405.2)
    assert filters.pivot_wavelength("WFC3", "UVIS", "F160W") == pytest.approx(15405.2)
    assert filters.filter_combination_pivot("acs", "wfc", "f606w-pol60v") == pytest.approx(5917.7)
    assert filters.filter_combination_pivot("acs", "wfc", "pol0v") == pytest.approx(6910.0)
    assert filters.filter_combination_pivot("acs", "wfc", "clear1l-f814w") == pytest.approx(8059.8)
    assert filters.filter_combination_pivot("acs", "wfc", "f999w") is None

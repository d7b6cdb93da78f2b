import pytest

from caldp.datasets import DatasetNameError, parse


@pytest.mark.parametrize(
    "name, kind, assoc",
    [
        ("j8cb010b0", "acs", True),
        ("J8BT05NJQ", "acs", False),
        ("iabc01xyq", "wfc3", False),
        ("ldfd01010", "cos", True),
        ("lb4l02m2q", "cos", False),
        ("o4er06llq", "stis", False),
        ("acs_8ph_01", "svm", False),
        ("wfc3_b46_06", "svm", False),
        ("skycell-p2381x06y09", "mvm", False),
    ],
)
def test_kinds(name, kind, assoc):
    ds = parse(name)
    assert ds.kind == kind and ds.instrument == kind
    assert ds.is_association is assoc
    assert ds.name == name.lower()


def test_svm_observation_set():
    assert parse("acs_8ph_01").obsset == "j8ph01"
    assert parse("wfc3_b46_06").obsset == "ib4606"


@pytest.mark.parametrize(
    "name, words",
    [
        ("u2xx0101t", "WFPC2"),
        ("n4aa01abq", "NICMOS"),
        ("j8cb010b", "unrecognised"),
        ("", "empty"),
        ("../j8cb010b0", "path"),
        ("j8cb/10b0", "path"),
        ("skycell-p23x06y09", "unrecognised"),
        ("stis_8ph_01", "unrecognised"),
    ],
)
def test_bad_names(name, words):
    with pytest.raises(DatasetNameError, match=words):
        parse(name)


@pytest.mark.parametrize(
    "name",
    [
        # One character past a valid name: each pattern must hold the whole name.
        "j8cb010b0x",
        "lb4l02m2qq",
        "acs_8ph_01x",
        "wfc3_b46_066",
        "skycell-p2381x06y09x",
        "skycell-p2381x06y090",
        # Not ASCII: other scripts' digits, and letters that match ASCII ones ignoring case
        # (U+017F long s ~ s, U+212A Kelvin sign ~ k, U+0130 dotted capital I ~ i).
        "acſ_8ph_01",
        "ſkycell-p2381x06y09",
        "s\u212aycell-p2381x06y09",
        "skycell-p٢٣٨١x06y09",
        "skycell-p2381x٠6y09",
        "acs_8ph_0١",
        "wfc3_b46_٠6",
        "j8cb010b٠",
        "\u0130abc01xyq",
    ],
)
def test_names_that_only_look_valid(name):
    with pytest.raises(DatasetNameError, match="unrecognised dataset name"):
        parse(name)

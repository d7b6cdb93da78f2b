"""caldp.extras: which extra or image provides each optional library and program."""

from __future__ import annotations

import importlib.metadata

import pytest

from caldp import extras
from caldp.sysexit import describe


def test_every_extra_named_is_one_of_the_package():
    """Of the installed caldp's metadata: from a checkout and in the image alike."""
    declared = set(importlib.metadata.metadata("caldp").get_all("Provides-Extra") or [])
    assert declared and set(extras.EXTRAS.values()) <= declared


def test_hints_of_libraries_name_their_extra():
    assert extras.hint("matplotlib") == (
        "matplotlib comes with caldp's 'previews' extra (pip install 'caldp[previews]') "
        "or caldp's Docker image"
    )
    assert extras.hint("botocore.exceptions").startswith("botocore comes with caldp's 'aws' extra")
    assert extras.hint("astropy") == ""  # a core dependency: no hint


def test_missing_gives_the_hint_of_what_is_not_installed():
    gone = ModuleNotFoundError("No module named 'spec_plots'", name="spec_plots.utils")
    assert extras.missing(gone) == extras.hint("spec_plots")
    assert extras.missing(FileNotFoundError(2, "No such file", "runsinglehap")) == (
        extras.hint("runsinglehap")
    )
    assert "'cal' extra" in extras.missing(FileNotFoundError(2, "No such file", "runsinglehap"))
    assert extras.missing(ModuleNotFoundError("no name")) == ""
    assert extras.missing(FileNotFoundError(2, "No such file", 3)) == ""  # a descriptor
    assert extras.missing(ImportError("cannot import name", name="PIL")) == ""


@pytest.mark.parametrize(
    "program, words",
    [
        ("calcos", "'cal' extra (pip install 'caldp[cal]')"),
        ("runastrodriz", "'cal' extra"),
        ("calacs.e", "hstcal, which is not on PyPI"),
        ("cs0.e", "STScI's calibration base image"),
    ],
)
def test_a_missing_program_says_where_it_comes_from(program, words):
    text = describe(FileNotFoundError(2, "No such file or directory", program))
    assert text.startswith("FileNotFoundError: [Errno 2] No such file or directory")
    assert words in text


def test_other_missing_files_get_no_hint():
    assert describe(FileNotFoundError(2, "No such file", "j8cb01u1q_raw.fits")).endswith("'")
    assert extras.hint("numpy") == ""

"""caldp.instruments.hst: the entries of the HST dataset kinds, each complete, and the
arguments each kind's programs get."""

from __future__ import annotations

from pathlib import Path

import pytest

from caldp import instruments
from caldp.datasets import parse
from caldp.exit_codes import ExitCode
from caldp.instruments import HANDLERS, hst

KINDS = sorted(HANDLERS)


def test_the_registry_is_these_entries():
    assert tuple(HANDLERS.values()) == hst.ALL
    assert [h.kind for h in hst.ALL] == ["acs", "wfc3", "stis", "cos", "svm", "mvm"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_entry_is_complete(kind):
    h = HANDLERS[kind]
    assert h.kind == kind and h.title and h.example
    example = parse(h.example)
    assert example.kind == kind  # the example is a name of this kind
    assert (h.letter is None) != (h.name_pattern is None)  # IPPPSSOOT or mosaic names
    assert h.input_suffixes and h.stages
    for stage in h.stages:
        assert stage.program and 0 in stage.ok_returncodes
        assert isinstance(stage.exit_code, ExitCode) and stage.exit_code != ExitCode.SUCCESS
    assert set(h.bestrefs_suffixes) <= set(h.input_suffixes)
    assert set(h.randseed_suffixes) <= set(h.input_suffixes)
    assert h.preview_suffixes and h.thumb_size > 0
    if h.mosaic:
        assert h.product_prefix and h.is_product and not h.mast_product_types
        assert not h.run_bestrefs
        assert instruments.mosaic_by_product(f"{h.product_prefix}x_y") is h
    else:
        assert h.mast_product_types == tuple(s.upper() for s in h.input_suffixes)
        assert instruments.by_letter(h.letter.upper()) is h
        assert instruments.by_title(h.title.lower()) is h


def test_keys_are_unique():
    letters = [h.letter for h in HANDLERS.values() if h.letter]
    prefixes = [h.product_prefix for h in HANDLERS.values() if h.product_prefix]
    titles = [h.title for h in HANDLERS.values()]
    assert len(set(letters)) == len(letters)
    assert len(set(prefixes)) == len(prefixes)
    assert len(set(titles)) == len(titles)


def paths(*names: str) -> list[Path]:
    return [Path(n) for n in names]


@pytest.mark.parametrize("kind, program", [("acs", "calacs.e"), ("wfc3", "calwf3.e")])
def test_acs_and_wfc3_calibrate_then_drizzle_the_association_or_the_raw(kind, program):
    handler = HANDLERS[kind]
    assoc, single = parse(handler.example[:8] + "0"), parse(handler.example[:8] + "q")
    inputs = paths(f"{assoc.name}_asn.fits", f"{assoc.name[:8]}q_raw.fits")
    assert [s.program for s in handler.stages] == [program, "runastrodriz"]
    stage1, stage2 = handler.stages
    assert stage1.argv(assoc, inputs) == [program, f"{assoc.name}_asn.fits"]
    assert stage1.argv(single, inputs) == [program, f"{single.name}_raw.fits"]
    assert stage2.argv(assoc, inputs) == ["runastrodriz", "-n", "1", f"{assoc.name}_asn.fits"]
    assert (stage1.exit_code, stage2.exit_code) == (ExitCode.STAGE1_ERROR, ExitCode.STAGE2_ERROR)


def test_stis_gets_its_raw_files_else_its_wav_files():
    (stage,) = HANDLERS["stis"].stages
    ds = parse("o4er06010")
    raws = paths("o4er06llq_raw.fits", "o4er06010_raw.fits", "o4er06llq_wav.fits")
    assert stage.argv(ds, raws) == ["cs0.e", "-tv", "o4er06010_raw.fits", "o4er06llq_raw.fits"]
    assert stage.argv(ds, paths("o4er06llq_wav.fits")) == ["cs0.e", "-tv", "o4er06llq_wav.fits"]
    with pytest.raises(FileNotFoundError, match="no _raw.fits or _wav.fits files for o4er06010"):
        stage.argv(ds, paths("o4er06010_asn.fits"))


def test_cos_gets_its_association_or_its_first_raw_file():
    (stage,) = HANDLERS["cos"].stages
    inputs = paths("ldfd01010_asn.fits", "ldfd01vnq_rawtag_b.fits", "ldfd01vnq_rawtag_a.fits")
    assert stage.argv(parse("ldfd01010"), inputs) == ["calcos", "ldfd01010_asn.fits"]
    assert stage.argv(parse("ldfd01vnq"), inputs) == ["calcos", "ldfd01vnq_rawtag_a.fits"]
    assert 5 in stage.ok_returncodes  # nothing to calibrate (an acquisition)
    with pytest.raises(FileNotFoundError, match="no COS raw file for ldfd01vnq"):
        stage.argv(parse("ldfd01vnq"), paths("ldfd01vnq_spt.fits"))


def test_svm_observation_sets_and_products():
    svm = HANDLERS["svm"]
    match = svm.name_pattern.fullmatch("WFC3_B2A_05")
    assert svm.obsset(match) == "ib2a05"
    ds = parse("acs_8ph_01")
    assert ds.obsset == "j8ph01"
    assert svm.is_product(ds, "hst_9984_01_acs_wfc_f606w_j8ph01")
    assert svm.is_product(ds, "hst_9984_01_acs_wfc_f606w_j8ph01ab")  # an exposure's
    assert not svm.is_product(ds, "hst_9984_01_acs_wfc_f606w_j8ph02")  # another visit
    assert not svm.is_product(ds, "hst_9984_01_acs_wfc_j8ph01")  # too few parts
    assert not svm.is_product(ds, "hst_9984_01_acs_wfc_f606w_j8ph01a")
    assert svm.stages[0].argv(ds, []) == ["runsinglehap", "acs_8ph_01_input.out"]


def test_mvm_products_are_those_of_its_skycell():
    mvm = HANDLERS["mvm"]
    ds = parse("skycell-p2381x06y09")
    assert mvm.is_product(ds, "hst_skycell-p2381x06y09_wfc3_ir_f160w_coarse-all")
    assert not mvm.is_product(ds, "hst_skycell-p2381x06y10_wfc3_ir_f160w_coarse-all")
    assert not mvm.is_product(ds, "hst")
    assert mvm.thumb_size == 512
    assert mvm.stages[0].argv(ds, []) == ["runmultihap", "skycell-p2381x06y09_input.out"]

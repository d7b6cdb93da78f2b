"""caldp.instruments.model: what an entry of the registry holds, and the two ways of
describing a dataset kind (hstcal IPPPSSOOT instruments and drizzled mosaics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from caldp.datasets import Dataset
from caldp.exit_codes import ExitCode
from caldp.instruments import model

ASSOC = Dataset("n4aa01010", "nicmos", is_association=True)
EXPOSURE = Dataset("n4aa01abq", "nicmos")


def paths(*names: str) -> list[Path]:
    return [Path("/w") / n for n in names]


def test_files_with_picks_whole_suffixes_sorted():
    inputs = paths("b_raw.fits", "a_raw.fits", "a_rawtag.fits", "a_raw.fits.gz", "a_asn.fits")
    assert [p.name for p in model.files_with(inputs, "raw")] == ["a_raw.fits", "b_raw.fits"]
    assert [p.name for p in model.files_with(inputs, "asn", "rawtag")] == [
        "a_asn.fits",
        "a_rawtag.fits",
    ]
    assert model.files_with(inputs) == []


def test_asn_or_raw_is_the_association_else_the_datasets_own_raw():
    both = paths("n4aa01010_asn.fits", "n4aa01abq_raw.fits", "n4aa01010_raw.fits")
    assert model.asn_or_raw(ASSOC, both) == ["n4aa01010_asn.fits"]
    assert model.asn_or_raw(ASSOC, both[1:]) == ["n4aa01010_raw.fits"]  # no table
    assert model.asn_or_raw(EXPOSURE, both) == ["n4aa01abq_raw.fits"]
    with pytest.raises(FileNotFoundError, match="no n4aa01abq_asn.fits or n4aa01abq_raw.fits"):
        model.asn_or_raw(EXPOSURE, paths("n4aa01abz_raw.fits"))  # never another's raw


def test_calibrate_is_stage_1_failing_with_23():
    stage = model.calibrate("calnica.e", ok_returncodes=(0, 4))
    assert (stage.name, stage.program, stage.exit_code) == (
        "stage1",
        "calnica.e",
        ExitCode.STAGE1_ERROR,
    )
    assert stage.ok_returncodes == frozenset({0, 4})
    assert stage.argv(EXPOSURE, paths("n4aa01abq_raw.fits")) == ["calnica.e", "n4aa01abq_raw.fits"]
    assert model.calibrate("x").ok_returncodes == frozenset({0})


def test_drizzle_is_stage_2_on_one_input_failing_with_24():
    inputs = paths("n4aa01010_asn.fits")
    assert model.DRIZZLE.argv(ASSOC, inputs) == ["runastrodriz", "-n", "1", "n4aa01010_asn.fits"]
    assert (model.DRIZZLE.name, model.DRIZZLE.exit_code) == ("stage2", ExitCode.STAGE2_ERROR)


def test_an_hstcal_instrument():
    h = model.hstcal(
        "nicmos",
        letter="N",
        title="NICMOS",
        example="n4aa01abq",
        stages=[model.calibrate("calnica.e")],
        input_suffixes=["asn", "raw"],
        image_suffixes=("cal",),
        spectral_suffixes=("x1d",),
    )
    assert h.letter == "n" and not h.mosaic and h.name_pattern is None
    assert isinstance(h.stages, tuple) and h.input_suffixes == ("asn", "raw")
    assert h.bestrefs_suffixes == ("raw",) and h.run_bestrefs
    assert h.mast_product_types == ("ASN", "RAW")
    assert h.preview_suffixes == ("cal", "x1d")
    assert h.thumb_size == model.DEFAULT_THUMB_SIZE
    assert not model.hstcal(
        "x", letter="x", title="X", example="x", stages=(), input_suffixes=(), bestrefs_suffixes=()
    ).run_bestrefs


def test_a_mosaic():
    def is_product(dataset, root):
        return root.startswith(f"hst_{dataset.name}")

    h = model.mosaic(
        "tiles",
        title="TILES",
        example="tile-0001",
        name_pattern=r"^tile-\d{4}$",
        program="runtilehap",
        exit_code=ExitCode.MVM_ERROR,
        product_prefix="hst_tile-",
        is_product=is_product,
    )
    assert h.mosaic and h.letter is None and not h.run_bestrefs
    assert h.mast_product_types == ()
    assert h.input_suffixes == ("flc", "flt") and h.preview_suffixes == ("drc", "drz")
    (stage,) = h.stages
    tile = Dataset("tile-0001", "tiles")
    assert stage.argv(tile, []) == ["runtilehap", "tile-0001_input.out"]
    assert stage.exit_code == ExitCode.MVM_ERROR
    assert stage.ok_returncodes == model.MOSAIC_OK_RETURNCODES == {0, 55, 65}
    assert h.name_pattern.fullmatch("TILE-0001")  # any case
    assert not h.name_pattern.fullmatch("tile-\u0661\u0662\u0663\u0664")  # ASCII digits only

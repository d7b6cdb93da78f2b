"""The registry of dataset kinds: every entry complete, and a new kind is one entry."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from caldp import instruments
from caldp.datasets import parse
from caldp.exit_codes import ExitCode
from caldp.instruments import HANDLERS
from caldp.instruments.model import calibrate, hstcal
from caldp.previews.cli import product_kind
from tests.support.pipeline_helpers import messages, run, tree
from tests.support.standins import STANDIN_DIR, standin_env


def test_every_program_has_a_test_double_or_is_installed():
    env = standin_env()
    for program in instruments.programs():
        assert shutil.which(program, path=env["PATH"]), program


def test_mosaic_products_longest_prefix_wins():
    assert instruments.mosaic_by_product("hst_skycell-p2381x06y09_wfc3_ir_f160w").kind == "mvm"
    assert instruments.mosaic_by_product("hst_8ph_01_acs_wfc_f606w_j8ph01").kind == "svm"
    assert instruments.mosaic_by_product("j8ph01abq") is None


# ---------------------------------------------------------------- a made-up instrument

DOUBLE = '''\
"""TEST DOUBLE of a made-up NICMOS calibration program: <root>_raw.fits ->
<root>_cal.fits and <root>.tra; exit 2 when the input is not a raw file."""
import sys
from astropy.io import fits

args = sys.argv[1:]
if len(args) != 1 or not args[0].endswith("_raw.fits"):
    print("ERROR: usage: calnica.e <root>_raw.fits")
    sys.exit(2)
root = args[0][: -len("_raw.fits")]
with fits.open(args[0]) as hdul:
    hdul[0].header["CALSTAT"] = "DONE"
    hdul[1].data = hdul[1].data.astype("float32") * 2.0
    hdul.writeto(f"{root}_cal.fits")
with open(f"{root}.tra", "w") as tra:
    tra.write(f"calnica.e {args[0]}: {root}_cal.fits written\\n")
print(f"{root}_cal.fits written")
'''

NICMOS = hstcal(
    "nicmos",
    letter="n",
    title="NICMOS",
    example="n4aa01abq",
    stages=(calibrate("calnica.e"),),
    input_suffixes=("asn", "raw"),
    bestrefs_suffixes=(),  # the test CRDS cache holds no NICMOS rules
    image_suffixes=("cal",),
)


@pytest.fixture
def nicmos(pipeline_env, monkeypatch):
    """NICMOS registered, with a test double of its program on PATH."""
    monkeypatch.setitem(HANDLERS, NICMOS.kind, NICMOS)
    bin_dir = pipeline_env / "bin"
    bin_dir.mkdir()
    program = bin_dir / "calnica.e"
    program.write_text(f"#!{sys.executable}\n{DOUBLE}")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{STANDIN_DIR}:{standin_env()['PATH']}")
    return pipeline_env


def write_nicmos_raw(folder: Path, root: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "NICMOS"
    primary.header["ROOTNAME"] = root.upper()
    y, x = np.mgrid[0:64, 0:64]
    sci = fits.ImageHDU((100 + 50 * np.exp(-((x - 30) ** 2 + (y - 20) ** 2) / 20.0)), name="SCI")
    path = folder / f"{root}_raw.fits"
    fits.HDUList([primary, sci]).writeto(path)
    return path


def test_unregistered_nicmos_is_refused():
    with pytest.raises(ValueError, match="NICMOS data, which caldp does not calibrate"):
        parse("n4aa01abq")


def test_a_registered_instrument_runs_through_the_whole_pipeline(nicmos):
    tmp = nicmos
    assert parse("N4AA01ABQ").kind == "nicmos"
    src = tmp / "src"
    write_nicmos_raw(src, "n4aa01abq")
    write_nicmos_raw(src, "n4aa01abz")  # another dataset sharing the folder: not picked
    out = tmp / "out"
    code = run("n4aa01abq", src, out)
    base = out / "data" / "nicmos" / "n4aa01abq"
    assert code == 0, (base / "logs" / "process.txt").read_text()[-3000:]
    assert messages(out) == ["processed-n4aa01abq.trigger"]
    delivered = tree(base)
    for name in (
        "n4aa01abq_raw.fits",
        "n4aa01abq_cal.fits",
        "n4aa01abq.tra",
        "previews/n4aa01abq_cal.jpg",
        "previews/n4aa01abq_cal_thumb.jpg",
    ):
        assert name in delivered, delivered
    assert not any("n4aa01abz" in name for name in delivered)
    assert fits.getval(base / "n4aa01abq_cal.fits", "CALSTAT") == "DONE"
    assert product_kind(base / "n4aa01abq_cal.fits") == "nicmos"


def test_a_registered_instruments_program_failure_is_its_stage_code(nicmos):
    tmp = nicmos
    src = tmp / "src"
    write_nicmos_raw(src, "n4aa01abq")
    (src / "n4aa01abq_raw.fits").rename(src / "n4aa01abq_raw.fits.bak")
    fits.HDUList([fits.PrimaryHDU()]).writeto(src / "n4aa01abq_raw.fits")  # no SCI: it fails
    out = tmp / "out"
    assert run("n4aa01abq", src, out) == ExitCode.STAGE1_ERROR
    assert messages(out) == ["error-n4aa01abq"]

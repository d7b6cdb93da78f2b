"""caldp.headers: the version keywords, and inputs checked whole before they are updated."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from caldp.errors import InputError
from caldp.headers import (
    FITS_BLOCK,
    MAX_VERSION_LENGTH,
    HeaderError,
    check_complete,
    update_primary,
    version_values,
)


def raw(path: Path, extensions: int = 2, nextend: int | None = None) -> Path:
    header = fits.Header({"INSTRUME": "ACS"})
    if nextend is not None:
        header["NEXTEND"] = nextend
    hdus = [fits.PrimaryHDU(header=header)]
    hdus += [fits.ImageHDU(np.ones((40, 40), np.float32)) for _ in range(extensions)]
    fits.HDUList(hdus).writeto(path)
    return path


def test_version_values_default_strip_and_truncate(caplog):
    long = "x" * (MAX_VERSION_LENGTH + 5)
    with caplog.at_level(logging.WARNING, logger="caldp.headers"):
        values = version_values(
            {"CSYS_VER": "  hst-pipeline:1 ", "AWSDPVER": "  ", "AWSYSVER": long}
        )
    assert values == {
        "CSYS_VER": "hst-pipeline:1",
        "AWSDPVER": "UNDEFINED",
        "AWSYSVER": "x" * MAX_VERSION_LENGTH,
    }
    assert "AWSYSVER is longer than 32 characters; truncated" in caplog.text
    assert version_values({}) == dict.fromkeys(("CSYS_VER", "AWSDPVER", "AWSYSVER"), "UNDEFINED")


def test_a_whole_file_passes(tmp_path):
    check_complete(raw(tmp_path / "j8cb01u1q_raw.fits", nextend=2))


def test_a_file_that_is_not_whole_blocks_is_refused(tmp_path):
    path = raw(tmp_path / "j8cb01u1q_raw.fits")
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(HeaderError, match="not a whole number of 2880-byte FITS blocks"):
        check_complete(path)
    path.write_bytes(b"")
    with pytest.raises(HeaderError, match="0 bytes"):
        check_complete(path)


def test_a_file_cut_at_a_block_inside_its_data_is_refused(tmp_path):
    path = raw(tmp_path / "j8cb01u1q_raw.fits")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - FITS_BLOCK])  # whole blocks, the last data missing
    with pytest.raises(HeaderError, match="truncated or corrupt"):
        check_complete(path)


def test_fewer_extensions_than_nextend_says_is_refused(tmp_path):
    path = raw(tmp_path / "j8cb01u1q_raw.fits", extensions=1, nextend=3)
    with pytest.raises(HeaderError, match="NEXTEND says 3 extensions, the file has 1"):
        check_complete(path)


def test_update_primary_sets_the_values_in_each_file(tmp_path):
    paths = [raw(tmp_path / f"j8cb01u{i}q_raw.fits") for i in (1, 2)]
    update_primary(paths, {"CSYS_VER": "v1", "RANDSEED": 1})
    for path in paths:
        header = fits.getheader(path)
        assert (header["CSYS_VER"], header["RANDSEED"], header["INSTRUME"]) == ("v1", 1, "ACS")
        assert fits.getdata(path, 1).sum() == 1600  # the data untouched


def test_update_primary_refuses_broken_files_as_input_errors(tmp_path):
    garbage = tmp_path / "j8cb01u1q_raw.fits"
    garbage.write_bytes(b"not FITS at all " * (FITS_BLOCK // 16))
    with pytest.raises(HeaderError, match="cannot update the header of j8cb01u1q_raw.fits"):
        update_primary([garbage], {"CSYS_VER": "v1"})
    assert issubclass(HeaderError, InputError)
    cut = raw(tmp_path / "j8cb01u2q_raw.fits")
    cut.write_bytes(cut.read_bytes()[:-FITS_BLOCK])
    before = cut.read_bytes()
    with pytest.raises(HeaderError, match="truncated"):
        update_primary([cut], {"CSYS_VER": "v1"})
    assert cut.read_bytes() == before  # checked before anything was written

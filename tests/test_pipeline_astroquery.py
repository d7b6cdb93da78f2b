"""caldp-process with astroquery: inputs, through astroquery's own MAST client and a local MAST server."""

from __future__ import annotations

import pytest

from tests.support.mast_server import Catalog, MastServer
from tests.support.pipeline_helpers import messages, run, tree
from tests.support.s3_fixtures import use_fast_retries

DS = "lb4l02m2q"


@pytest.fixture
def mast(monkeypatch, testdata):
    use_fast_retries(monkeypatch)
    catalog = Catalog()
    acq = testdata / "cos" / "acq"
    catalog.add_observation(
        DS, "COS/NUV", [acq / f"{DS}_rawacq.fits.gz", acq / f"{DS}_spt.fits.gz"]
    )
    with MastServer(catalog) as server:
        monkeypatch.setenv("CALDP_MAST_SERVER", server.url)
        yield server


def test_astroquery_input_real_calcos(pipeline_env, mast):
    out = pipeline_env / "out"
    assert run(DS, "astroquery:", out) == 0
    assert messages(out) == [f"processed-{DS}.trigger"]
    delivered = tree(out / "data" / "cos" / DS)
    assert {f"{DS}_rawacq.fits", f"{DS}_spt.fits", f"{DS}.tra"} <= set(delivered)


def test_astroquery_empty_result_is_22(pipeline_env, mast):
    out = pipeline_env / "out"
    assert run("lb4l02m3q", "astroquery:", out) == 22
    assert messages(out) == ["error-lb4l02m3q"]
    log = (out / "data/cos/lb4l02m3q/logs/process.txt").read_text()
    assert (
        log.strip()
        .splitlines()[-1]
        .split(": ", 1)[1]
        .startswith("result: exit 22 ASTROQUERY_ERROR")
    )

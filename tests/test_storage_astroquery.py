"""astroquery: inputs with astroquery's real MAST client against a local MAST server."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from caldp.datasets import parse
from caldp.errors import DownloadError
from caldp.settings import Settings
from caldp.storage import astroquery as aq
from tests.support.mast_server import Catalog, MastServer
from tests.support.s3_fixtures import s3_client, use_fast_retries

COS_DS = "ldfd01010"
COS_MEMBERS = ["ldfd01vnq", "ldfd01vpq", "ldfd01vrq", "ldfd01vtq"]  # from its _asn.fits
ACS_RAW = "j8bt05njq_raw.fits"


def _cos_products(testdata: Path) -> list[Path]:
    """Some of the real calibrated products (not the 2 GB _csum files)."""
    cal = testdata / "cos" / COS_DS / "calcos-3.3.4"
    return sorted(cal.glob("*_x1d*.gz")) + sorted(cal.glob("*_lampflash.fits.gz"))


def _cos_catalog(testdata: Path, drop: str = "") -> Catalog:
    """The real COS association as MAST files it: raw inputs, products and an ACQ
    exposure of the same visit that is not an association member."""
    cos = testdata / "cos" / COS_DS
    files = [p for p in sorted((cos / "raw").glob("*.gz")) if not drop or drop not in p.name]
    files += _cos_products(testdata)
    catalog = Catalog()
    catalog.add_observation(COS_DS, "COS/FUV", files)
    return catalog


def _acs_catalog(testdata: Path) -> Catalog:
    """The ACS exposure filed under its association j8bt05020 only, beside another
    exposure of the visit (its bytes stand in for a second exposure)."""
    raw = testdata / "acs" / ACS_RAW
    catalog = Catalog()
    catalog.add_observation("j8bt05020", "ACS/HRC", [raw, ("j8bt05nkq_raw.fits", raw)])
    return catalog


@pytest.fixture
def mast(monkeypatch):
    """Start a MAST server for a catalogue and point caldp's astroquery client at it."""
    use_fast_retries(monkeypatch)
    servers = []

    def start(catalog: Catalog) -> MastServer:
        server = MastServer(catalog).__enter__()
        servers.append(server)
        monkeypatch.setenv("CALDP_MAST_SERVER", server.url)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def _unzipped(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def test_cos_association_gets_exactly_its_members_raw_files(mast, testdata, tmp_path):
    server = mast(_cos_catalog(testdata))
    files = aq.fetch("", parse(COS_DS), tmp_path / "in", Settings.read())
    expected = [f"{COS_DS}_asn.fits"]
    for member in COS_MEMBERS:
        expected += [f"{member}_rawtag_a.fits", f"{member}_spt.fits"]
    assert sorted(p.name for p in files) == sorted(expected)
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == sorted(expected)
    raw = testdata / "cos" / COS_DS / "raw"
    for path in files:
        assert path.read_bytes() == _unzipped(raw / (path.name + ".gz"))
    # Neither the ACQ exposure of the visit nor any calibrated product was downloaded.
    downloaded = {what for method, what in server.requests if method == "GET"}
    assert downloaded == set(expected)


def test_exposure_filed_under_its_association(mast, testdata, tmp_path):
    server = mast(_acs_catalog(testdata))
    files = aq.fetch("", parse("j8bt05njq"), tmp_path / "in", Settings.read())
    assert [p.name for p in files] == [ACS_RAW]
    assert files[0].read_bytes() == (testdata / "acs" / ACS_RAW).read_bytes()
    assert server.downloads("j8bt05nkq_raw.fits") == 0


def test_nothing_at_mast_is_22(mast, testdata, tmp_path):
    mast(_acs_catalog(testdata))
    with pytest.raises(DownloadError) as err:
        aq.fetch("", parse("lb4l02m2q"), tmp_path / "in", Settings.read())
    assert "lb4l02m2q" in str(err.value)
    assert not (tmp_path / "in").exists() or not any((tmp_path / "in").iterdir())


def test_observation_without_raw_files_is_22(mast, testdata, tmp_path):
    catalog = Catalog()
    catalog.add_observation(COS_DS, "COS/FUV", _cos_products(testdata))
    mast(catalog)
    with pytest.raises(DownloadError) as err:
        aq.fetch("", parse(COS_DS), tmp_path / "in", Settings.read())
    assert "asn" in str(err.value)


@pytest.mark.fault(
    "MAST lists an association table but none of its raw files",
    "exit 22, not the table alone",
)
def test_association_table_without_raw_files_is_22(mast, testdata, tmp_path):
    """MAST lists the association table but none of its raw files: the table alone
    is not a result (this gets past the table, unlike the test above)."""
    catalog = Catalog()
    asn = testdata / "cos" / COS_DS / "raw" / f"{COS_DS}_asn.fits.gz"
    catalog.add_observation(COS_DS, "COS/FUV", [asn, *_cos_products(testdata)])
    server = mast(catalog)
    with pytest.raises(DownloadError) as err:
        aq.fetch("", parse(COS_DS), tmp_path / "in", Settings.read())
    assert "MAST lists no ASN/RAW/" in str(err.value)
    assert server.downloads(f"{COS_DS}_asn.fits") == 1  # it got as far as the table


def test_exposure_with_only_calibrated_products_is_22(mast, testdata, tmp_path):
    raw = testdata / "acs" / ACS_RAW
    catalog = Catalog()
    catalog.add_observation("j8bt05njq", "ACS/HRC", [("j8bt05njq_flt.fits", raw)])
    mast(catalog)
    with pytest.raises(DownloadError) as err:
        aq.fetch("", parse("j8bt05njq"), tmp_path / "in", Settings.read())
    assert "MAST lists no ASN/RAW files for j8bt05njq" in str(err.value)


def test_a_member_missing_at_mast_is_a_partial_result(mast, testdata, tmp_path):
    mast(_cos_catalog(testdata, drop="ldfd01vtq"))
    with pytest.raises(DownloadError) as err:
        aq.fetch("", parse(COS_DS), tmp_path / "in", Settings.read())
    assert "ldfd01vtq" in str(err.value)


def test_failed_downloads_are_retried(mast, testdata, tmp_path):
    server = mast(_cos_catalog(testdata))
    server.fail_download("ldfd01vnq_rawtag_a.fits", "truncate")
    server.fail_download("ldfd01vpq_spt.fits", "500", "500")
    files = aq.fetch("", parse(COS_DS), tmp_path / "in", Settings.read())
    assert len(files) == 9
    assert server.downloads("ldfd01vnq_rawtag_a.fits") == 2
    assert server.downloads("ldfd01vpq_spt.fits") == 3
    raw = testdata / "cos" / COS_DS / "raw"
    for name in ("ldfd01vnq_rawtag_a.fits", "ldfd01vpq_spt.fits"):
        assert (tmp_path / "in" / name).read_bytes() == _unzipped(raw / (name + ".gz"))


def test_downloads_that_keep_failing_are_22(mast, testdata, tmp_path):
    server = mast(_cos_catalog(testdata))
    server.fail_download("ldfd01vrq_rawtag_a.fits", *["truncate"] * 5)
    with pytest.raises(DownloadError) as err:
        aq.fetch("", parse(COS_DS), tmp_path / "in", Settings.read())
    assert "ldfd01vrq_rawtag_a.fits" in str(err.value)
    assert server.downloads("ldfd01vrq_rawtag_a.fits") == 3
    assert not (tmp_path / "in" / "ldfd01vrq_rawtag_a.fits").exists()


POLLER = "j8bt05njq_flc.fits,9019,8BT,05,100.0,F555W,HRC,/ifs/archive/j8bt05njq_flc.fits\n"


def _svm_catalog(testdata: Path) -> Catalog:
    """FLC files of visit j8bt05 (the real raw's bytes stand in for FLC content)."""
    raw = testdata / "acs" / ACS_RAW
    catalog = Catalog()
    catalog.add_observation(
        "j8bt05020",
        "ACS/HRC",
        [("j8bt05njq_flc.fits", raw), ("j8bt05nkq_flc.fits", raw), (ACS_RAW, raw)],
    )
    return catalog


def test_svm_poller_in_a_folder(mast, testdata, tmp_path):
    server = mast(_svm_catalog(testdata))
    where = tmp_path / "poller"
    where.mkdir()
    (where / "acs_8bt_05_input.out").write_text(POLLER)
    files = aq.fetch(str(where), parse("acs_8bt_05"), tmp_path / "in", Settings.read())
    assert sorted(p.name for p in files) == ["acs_8bt_05_input.out", "j8bt05njq_flc.fits"]
    assert (tmp_path / "in" / "acs_8bt_05_input.out").read_text() == POLLER
    assert (tmp_path / "in" / "j8bt05njq_flc.fits").read_bytes() == (
        testdata / "acs" / ACS_RAW
    ).read_bytes()
    assert server.downloads("j8bt05nkq_flc.fits") == 0


def test_mvm_poller_on_s3_listing_a_file_mast_lacks_is_22(
    mast, testdata, tmp_path, aws_env, monkeypatch
):
    use_fast_retries(monkeypatch)
    mast(_svm_catalog(testdata))
    s3 = s3_client(aws_env)
    s3.create_bucket(Bucket="caldp-pollers")
    ds = "skycell-p2381x06y09"
    text = POLLER + "j8bt05nzq_flc.fits,9019,8BT,05,100.0,F555W,HRC,p2381x06y09,NEW,x\n"
    s3.put_object(Bucket="caldp-pollers", Key=f"mvm/{ds}_input.out", Body=text.encode())
    with pytest.raises(DownloadError) as err:
        aq.fetch("s3://caldp-pollers/mvm", parse(ds), tmp_path / "in", Settings.read())
    assert "j8bt05nzq_flc.fits" in str(err.value)
    # The same poller without the unknown file is fetched.
    s3.put_object(Bucket="caldp-pollers", Key=f"mvm/{ds}_input.out", Body=POLLER.encode())
    files = aq.fetch("s3://caldp-pollers/mvm", parse(ds), tmp_path / "in2", Settings.read())
    assert sorted(p.name for p in files) == sorted([f"{ds}_input.out", "j8bt05njq_flc.fits"])


def test_missing_poller_is_22(mast, testdata, tmp_path):
    mast(_svm_catalog(testdata))
    with pytest.raises(DownloadError):
        aq.fetch(str(tmp_path), parse("acs_8bt_05"), tmp_path / "in", Settings.read())


def test_selection_is_exact():
    rows = [
        {"productFilename": "j8cb01abq_raw.fits", "productSubGroupDescription": "RAW"},
        {"productFilename": "j8cb01abz_raw.fits", "productSubGroupDescription": "RAW"},
        {"productFilename": "j8cb01abq_flt.fits", "productSubGroupDescription": "FLT"},
        {"productFilename": "j8cb01abq_raw.fits", "productSubGroupDescription": "RAW"},
        {"productFilename": "j8cb01abq_spt.fits", "productSubGroupDescription": "RAW"},
        {"productFilename": "j8cb01abqx_raw.fits", "productSubGroupDescription": "RAW"},
    ]
    assert aq.select_rows(rows, ["ASN", "RAW"], ["j8cb01abq"]) == [0]
    assert aq.select_named(rows, ["J8CB01ABZ_RAW.FITS"]) == [1]


def test_association_member_not_present_is_neither_fetched_nor_required(mast, testdata, tmp_path):
    from astropy.io import fits
    from astropy.table import Table

    from caldp import inputs
    from caldp.instruments import HANDLERS

    asn = tmp_path / "j8bt05020_asn.fits"
    table = Table(
        {
            "MEMNAME": ["J8BT05NJQ", "J8BT05NKQ", "J8BT05021"],
            "MEMTYPE": ["EXP-CRJ", "EXP-CRJ", "PROD-CRJ"],
            "MEMPRSNT": [True, False, True],
        }
    )
    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(table)]).writeto(asn)
    catalog = Catalog()
    catalog.add_observation("j8bt05020", "ACS/HRC", [asn, testdata / "acs" / ACS_RAW])
    server = mast(catalog)
    files = aq.fetch("", parse("j8bt05020"), tmp_path / "in", Settings.read())
    assert sorted(p.name for p in files) == ["j8bt05020_asn.fits", ACS_RAW]
    selection = inputs.select(parse("j8bt05020"), HANDLERS["acs"], files)
    assert [p.name for p in selection.files] == ["j8bt05020_asn.fits", ACS_RAW]
    assert server.downloads("j8bt05nkq_raw.fits") == 0

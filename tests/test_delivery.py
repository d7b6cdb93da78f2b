"""caldp.delivery: what a run delivers, from the files in its working folder."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from caldp import delivery
from caldp.datasets import parse
from caldp.exit_codes import ExitCode
from caldp.instruments import HANDLERS

ACS = parse("j8cb01u1q")


def files(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(name)
    return [folder / name for name in names]


def names(paths) -> list[str]:
    return [p.name for p in paths]


def test_products_are_the_data_files_but_those_never_delivered(tmp_path):
    files(tmp_path, "o4er06llq_raw.fits", "o4er06llq_epc.fits", "o4er06llq_x1d.fits")
    files(tmp_path, "o4er06llq.tra", "o4er06llq_cal_env.txt", "o4er06llq.log", "notes.md")
    (tmp_path / "logs.fits").mkdir()  # a folder, not a file
    assert names(delivery.products(tmp_path, HANDLERS["stis"])) == [
        "o4er06llq.tra",
        "o4er06llq_raw.fits",
        "o4er06llq_x1d.fits",
    ]


def test_mosaic_products_include_the_manifest_log_and_poller(tmp_path):
    files(tmp_path, "hst_8ph_01_acs_wfc_f606w_j8ph01_drc.fits", "astrodrizzle.log")
    files(tmp_path, "acs_8ph_01_manifest.txt", "acs_8ph_01_input.out", "x.json")
    assert names(delivery.products(tmp_path, HANDLERS["svm"])) == [
        "acs_8ph_01_input.out",
        "acs_8ph_01_manifest.txt",
        "astrodrizzle.log",
        "hst_8ph_01_acs_wfc_f606w_j8ph01_drc.fits",
    ]
    assert names(delivery.products(tmp_path, HANDLERS["acs"])) == [
        "hst_8ph_01_acs_wfc_f606w_j8ph01_drc.fits"
    ]


def test_snapshot_copies_the_logs_as_they_are_now(tmp_path):
    logs = tmp_path / "logs"
    (process,) = files(logs, "process.txt")
    (logs / "sub").mkdir()
    files(tmp_path / "copies", "stale.txt")
    copies = delivery.snapshot(logs, tmp_path / "copies")
    assert copies == [tmp_path / "copies" / "process.txt"]
    process.write_text("written on after the snapshot")
    assert copies[0].read_text() == "process.txt"


def test_snapshot_without_room_delivers_the_logs_themselves(tmp_path, monkeypatch, caplog):
    logs = tmp_path / "logs"
    made = files(logs, "process.txt", "preview.txt")

    def full(src, dest):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(delivery.shutil, "copyfile", full)
    with caplog.at_level(logging.WARNING, logger="caldp.delivery"):
        got = delivery.snapshot(logs, tmp_path / "copies")
    assert got == sorted(made) and not (tmp_path / "copies").exists()
    assert "delivering them as they are" in caplog.text


def plan_for(work: Path, code: ExitCode, staged: list[Path], **kw):
    return delivery.build_plan(
        ACS,
        HANDLERS["acs"],
        code,
        work_dir=work,
        staged=staged,
        previews=kw.get("previews", []),
        logs=kw.get("logs", []),
        env_files=kw.get("env_files", []),
    )


@pytest.mark.parametrize("code", [ExitCode.SUCCESS, ExitCode.CREATE_PREVIEWS_ERROR])
def test_success_delivers_products_and_previews(tmp_path, code):
    staged = files(tmp_path, "j8cb01u1q_raw.fits")
    files(tmp_path, "j8cb01u1q_flt.fits", "j8cb01u1q.tra")
    previews = files(tmp_path / "previews", "b.jpg", "a.jpg")
    logs, env = [tmp_path / "process.txt"], [tmp_path / "j8cb01u1q_cal_env.txt"]
    plan = plan_for(tmp_path, code, staged, previews=previews, logs=logs, env_files=env)
    assert names(plan.products) == ["j8cb01u1q.tra", "j8cb01u1q_flt.fits", "j8cb01u1q_raw.fits"]
    assert names(plan.previews) == ["a.jpg", "b.jpg"]
    assert (plan.logs, plan.env_files, plan.inputs_only) == (logs, env, False)


def test_a_failed_calibration_delivers_the_inputs_and_the_trailers(tmp_path):
    staged = files(tmp_path, "j8cb01u1q_raw.fits", "j8cb010b0_asn.fits")
    files(tmp_path, "j8cb01u1q_flt.fits", "j8cb01u1q.tra")
    previews = files(tmp_path / "previews", "a.jpg")
    plan = plan_for(tmp_path, ExitCode.STAGE1_ERROR, staged, previews=previews)
    assert names(plan.products) == ["j8cb010b0_asn.fits", "j8cb01u1q.tra", "j8cb01u1q_raw.fits"]
    assert plan.inputs_only and plan.previews == []


def test_a_failure_before_staging_delivers_no_products(tmp_path):
    files(tmp_path, "j8cb01u1q.tra")
    plan = plan_for(tmp_path, ExitCode.INPUT_TAR_FILE_ERROR, [])
    assert plan.products == [] and not plan.inputs_only


def test_success_that_made_nothing_new_delivers_the_inputs_as_inputs(tmp_path, caplog):
    staged = files(tmp_path, "j8cb01u1q_raw.fits")
    with caplog.at_level(logging.WARNING, logger="caldp.delivery"):
        plan = plan_for(tmp_path, ExitCode.SUCCESS, staged)
    assert plan.products == staged and plan.inputs_only
    assert "calibration produced no new files" in caplog.text


def test_text_files_are_redacted_binary_files_are_not(tmp_path, monkeypatch):
    monkeypatch.setenv("CALDP_TEST_PASSWORD", "pa55word-xyz")
    work = tmp_path
    trailer, manifest, fits_file, jpg, env = files(
        work, "j8cb01u1q.tra", "m.txt", "j8cb01u1q_flt.fits", "p.jpg", "env.txt"
    )
    for path in (trailer, manifest, fits_file, jpg, env):
        path.write_text("secret pa55word-xyz here\n")
    plan = plan_for(work, ExitCode.SUCCESS, [], previews=[jpg], env_files=[env])
    plan.products = [trailer, manifest, fits_file]
    delivery.redact_text_files(plan)
    for path in (trailer, manifest, env):
        assert path.read_text() == "secret *** here\n"
    for path in (fits_file, jpg):
        assert path.read_text() == "secret pa55word-xyz here\n"

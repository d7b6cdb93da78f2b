"""caldp-process end to end on file: inputs and outputs, every dataset kind and exit code."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from astropy.io import fits

from tests.support import synthetic
from tests.support.pipeline_helpers import (
    assert_failed_cleanly,
    hashes,
    make_tarball,
    messages,
    records,
    run,
    tree,
)

# ----------------------------------------------------------------------------- success


def test_real_cos_acquisition_from_tarball(pipeline_env, testdata):
    """Real calcos on a real COS acquisition: its exit 5 is success."""
    tmp = pipeline_env
    src = tmp / "src"
    src.mkdir()
    files = [testdata / "cos" / "acq" / f"lb4l02m2q_{s}.fits.gz" for s in ("rawacq", "spt")]
    make_tarball(src, "lb4l02m2q.tar.gz", files)
    before = hashes(src)
    out = tmp / "out"

    assert run("lb4l02m2q", src, out) == 0

    assert hashes(src) == before  # the user's inputs are never modified
    base = "data/cos/lb4l02m2q"
    expected = {
        f"{base}/lb4l02m2q.tra",
        f"{base}/lb4l02m2q_rawacq.fits",
        f"{base}/lb4l02m2q_spt.fits",
        f"{base}/logs/process.txt",
        f"{base}/logs/preview.txt",
        f"{base}/logs/process_metrics.txt",
        f"{base}/logs/preview_metrics.txt",
        f"{base}/logs/disk_metrics.txt",
        f"{base}/logs/metrics.json",
        "messages/processed-lb4l02m2q.trigger",
    }
    assert set(tree(out)) == expected
    message = (out / "messages" / "processed-lb4l02m2q.trigger").read_text().splitlines()
    assert message[0] == "processed-lb4l02m2q.trigger"
    assert set(message[1:]) == expected - {"messages/processed-lb4l02m2q.trigger"}
    header = fits.getheader(out / base / "lb4l02m2q_rawacq.fits")
    assert header["RANDSEED"] == 1
    assert header["CSYS_VER"] == "UNDEFINED" and header["AWSDPVER"] == "UNDEFINED"
    assert header["CRDS_CTX"] == "hst_0729.pmap"
    log = (out / base / "logs" / "process.txt").read_text()
    assert "calcos exit 5 is not a failure" in log
    assert "not an ACQ/IMAGE" in log  # calcos's own output is in the log
    for step in ("fetch", "version keywords", "bestrefs", "stage1", "previews"):
        assert f"step {step}: done in" in log
    lines = (out / base / "logs" / "process_metrics.txt").read_text().splitlines()
    assert lines[-1] == "\tExit status: 0" and int(lines[9].split(": ")[1]) > 0
    assert not (Path(os.environ["CALDP_HOME"]) / "caldp-work" / "lb4l02m2q").exists()


PREVIEW_LIBRARIES = ("matplotlib", "spec_plots", "PIL")
IMPORTED_AT_EXIT = """
import sys
from caldp.cli import main
code = main(sys.argv[1:-1])
print(code, *sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[-1].split(","))))
"""


def preview_libraries_imported(dataset: str, src: Path, out: Path) -> list[str]:
    """Run caldp-process in a fresh interpreter; which preview libraries it imported."""
    argv = [dataset, f"file:{src}", f"file:{out}", "caldp-config-local"]
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", IMPORTED_AT_EXIT, *argv, ",".join(PREVIEW_LIBRARIES)],
        capture_output=True,
        text=True,
        check=True,
    )
    code, *imported = done.stdout.split()
    assert code == "0", done.stderr[-2000:]
    return imported


def test_acquisition_imports_no_preview_library(pipeline_env, testdata):
    """A COS acquisition gets no preview: nothing of matplotlib or spec-plots is imported,
    while a dataset with previews imports what it needs."""
    src = pipeline_env / "src"
    src.mkdir()
    for s in ("rawacq", "spt"):
        shutil.copy(testdata / "cos" / "acq" / f"lb4l02m2q_{s}.fits.gz", src)
    assert preview_libraries_imported("lb4l02m2q", src, pipeline_env / "out") == []
    synthetic.make_dataset(pipeline_env / "acs", "j8cb01u1q")
    imported = preview_libraries_imported("j8cb01u1q", pipeline_env / "acs", pipeline_env / "o2")
    assert imported == ["PIL"]


def test_version_keywords_from_environment(pipeline_env, testdata, monkeypatch):
    tmp = pipeline_env
    src = tmp / "src"
    src.mkdir()
    for s in ("rawacq", "spt"):
        shutil.copy(testdata / "cos" / "acq" / f"lb4l02m2q_{s}.fits.gz", src)
    monkeypatch.setenv("CSYS_VER", "hstdp-2026.3.1-py3.11")
    monkeypatch.setenv("AWSDPVER", "1.2.3")
    monkeypatch.setenv("AWSYSVER", "x" * 80)
    assert run("lb4l02m2q", src, tmp / "out") == 0
    header = fits.getheader(tmp / "out/data/cos/lb4l02m2q/lb4l02m2q_spt.fits")
    assert header["CSYS_VER"] == "hstdp-2026.3.1-py3.11"
    assert header["AWSDPVER"] == "1.2.3"
    assert header["AWSYSVER"] == "x" * 32  # kept short


KINDS = [
    # dataset, instrument folder, stage programs and arguments, a product that must be delivered
    (
        "j8cb010b0",
        "acs",
        [["calacs.e", "j8cb010b0_asn.fits"], ["runastrodriz", "-n", "1", "j8cb010b0_asn.fits"]],
        "_drz.fits",
    ),
    (
        "j8cb01u1q",
        "acs",
        [["calacs.e", "j8cb01u1q_raw.fits"], ["runastrodriz", "-n", "1", "j8cb01u1q_raw.fits"]],
        "j8cb01u1q_flt.fits",
    ),
    (
        "ibbb01010",
        "wfc3",
        [["calwf3.e", "ibbb01010_asn.fits"], ["runastrodriz", "-n", "1", "ibbb01010_asn.fits"]],
        "_flt.fits",
    ),
    (
        "ibbb01abq",
        "wfc3",
        [["calwf3.e", "ibbb01abq_raw.fits"], ["runastrodriz", "-n", "1", "ibbb01abq_raw.fits"]],
        "ibbb01abq_flt.fits",
    ),
    ("ocmv0lw6q", "stis", [["cs0.e", "-tv", "ocmv0lw6q_raw.fits"]], "ocmv0lw6q_flt.fits"),
    ("acs_8ph_01", "svm", [["runsinglehap", "acs_8ph_01_input.out"]], "acs_8ph_01_manifest.txt"),
    (
        "skycell-p2381x06y09",
        "mvm",
        [["runmultihap", "skycell-p2381x06y09_input.out"]],
        "skycell-p2381x06y09_manifest.txt",
    ),
]


@pytest.mark.parametrize("dataset, instrument, argvs, product", KINDS, ids=[k[0] for k in KINDS])
def test_every_kind_with_stand_ins(pipeline_env, dataset, instrument, argvs, product):
    tmp = pipeline_env
    src = tmp / "src"
    synthetic.make_dataset(src, dataset)
    out = tmp / "out"
    assert run(dataset, src, out) == 0, (
        out / f"data/{instrument}/{dataset}/logs/process.txt"
    ).read_text()[-3000:]
    assert messages(out) == [f"processed-{dataset}.trigger"]
    ran = records(tmp)
    assert [[r["program"], *r["argv"]] for r in ran] == argvs
    crds_refs = f"{os.environ['CRDS_PATH']}/references/hst/"
    for r in ran:
        assert {r["env"][v] for v in ("iref", "jref", "oref", "lref", "nref", "uref")} == {
            crds_refs
        }
    delivered = tree(out / "data" / instrument / dataset)
    assert any(name.endswith(product) for name in delivered), delivered
    assert "logs/process.txt" in delivered
    previews = [name for name in delivered if name.startswith("previews/")]
    wanted = (".png",) if instrument == "stis" else (".jpg",)
    assert any(name.endswith(wanted) for name in previews), previews
    assert any("_thumb." in name for name in previews), previews


def test_stis_wav_only_and_epc_not_delivered(pipeline_env):
    tmp = pipeline_env
    src = tmp / "src"
    synthetic.make_stis_wav_only(src, "oabc01xyq")
    out = tmp / "out"
    assert run("oabc01xyq", src, out) == 0
    r = records(tmp)[0]
    assert [r["program"], *r["argv"]] == ["cs0.e", "-tv", "oabc01xyq_wav.fits"]


def test_stis_epc_files_are_not_delivered(pipeline_env):
    tmp = pipeline_env
    src = tmp / "src"
    synthetic.make_stis_raw(src, "oabc01xyq", wav=True, epc=True)
    assert any(p.name.endswith("_epc.fits") for p in src.iterdir())
    out = tmp / "out"
    assert run("oabc01xyq", src, out) == 0
    r = records(tmp)[0]
    assert [r["program"], *r["argv"]] == ["cs0.e", "-tv", "oabc01xyq_raw.fits"]
    delivered = tree(out)
    assert not any(name.endswith("_epc.fits") for name in delivered)
    assert any(name.endswith("_raw.fits") for name in delivered)


def test_env_file_reaches_programs_and_is_delivered(pipeline_env, monkeypatch):
    tmp = pipeline_env
    src = tmp / "src"
    synthetic.make_dataset(src, "j8cb01u1q")
    synthetic.make_cal_env(
        src, "j8cb01u1q", ["ASTROMETRY_COMPUTE_APOSTERIORI=off", "PATH=/evil", "garbage"]
    )
    monkeypatch.setenv("CALDP_STANDIN_RECORD_VARS", "ASTROMETRY_COMPUTE_APOSTERIORI,PATH")
    out = tmp / "out"
    assert run("j8cb01u1q", src, out) == 0
    for r in records(tmp):
        assert r["env"]["ASTROMETRY_COMPUTE_APOSTERIORI"] == "off"
        assert r["env"]["PATH"] != "/evil"
    assert (out / "data/acs/j8cb01u1q/env/j8cb01u1q_cal_env.txt").exists()
    log = (out / "data/acs/j8cb01u1q/logs/process.txt").read_text()
    assert "sets PATH, which caldp does not allow" in log and "line 3 is not KEY=VALUE" in log


def test_profile_defaults_reach_programs_not_this_process(pipeline_env, monkeypatch):
    tmp = pipeline_env
    src = tmp / "src"
    synthetic.make_dataset(src, "j8cb01u1q")
    monkeypatch.delenv("CRDS_READONLY_CACHE")  # caldp-config-local's default: "1"
    monkeypatch.setenv("CALDP_STANDIN_RECORD_VARS", "CRDS_READONLY_CACHE")
    before = dict(os.environ)
    assert run("j8cb01u1q", src, tmp / "out") == 0
    for r in records(tmp):
        assert r["env"]["CRDS_READONLY_CACHE"] == "1"
    assert dict(os.environ) == before
    log = (tmp / "out/data/acs/j8cb01u1q/logs/process.txt").read_text()
    assert "profile sets CRDS_READONLY_CACHE=1" in log


def test_bad_bytes_in_program_output_are_harmless(pipeline_env, monkeypatch):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    monkeypatch.setenv("CALDP_STANDIN_BADBYTES", "1")
    assert run("j8cb01u1q", tmp / "src", tmp / "out") == 0
    assert "\ufffd" in (tmp / "out/data/acs/j8cb01u1q/logs/process.txt").read_text()


@pytest.mark.parametrize("dataset, code", [("acs_8ph_01", 55), ("skycell-p2381x06y09", 65)])
def test_no_viable_data_is_not_a_failure(pipeline_env, monkeypatch, dataset, code):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", dataset)
    monkeypatch.setenv("CALDP_STANDIN_EXIT", str(code))
    assert run(dataset, tmp / "src", tmp / "out") == 0


def test_output_none_keeps_results_in_work_dir(pipeline_env):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    assert run("j8cb01u1q", tmp / "src", "NONE") == 0
    work = Path(os.environ["CALDP_HOME"]) / "caldp-work" / "j8cb01u1q"
    assert (work / "j8cb01u1q_flt.fits").exists()
    assert (work / "logs" / "process.txt").exists()
    assert not (tmp / "src" / "messages").exists()


def test_rerun_gives_the_same_tree(pipeline_env):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb010b0")
    out = tmp / "out"
    assert run("j8cb010b0", tmp / "src", out) == 0
    first = tree(out)
    assert run("j8cb010b0", tmp / "src", out) == 0
    assert tree(out) == first
    assert not [p for p in (out / "data" / "acs").iterdir() if p.name.startswith(".")]


def test_failed_run_then_success_leaves_no_stale_state(pipeline_env, monkeypatch):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    out = tmp / "out"
    monkeypatch.setenv("CALDP_STANDIN_FAIL", "2")
    assert run("j8cb01u1q", tmp / "src", out) == 23
    assert messages(out) == ["error-j8cb01u1q"]
    monkeypatch.delenv("CALDP_STANDIN_FAIL")
    (out / "messages" / "placed-j8cb01u1q").write_text("orchestrator's\n")
    assert run("j8cb01u1q", tmp / "src", out) == 0
    assert messages(out) == ["placed-j8cb01u1q", "processed-j8cb01u1q.trigger"]
    assert (out / "messages" / "placed-j8cb01u1q").read_text() == "orchestrator's\n"
    assert not (out / "data/acs/j8cb01u1q/j8cb01u1q_inputs.tar.gz").exists()


# ----------------------------------------------------------------------------- failures

PROGRAM_FAULTS = [
    # dataset, instrument, environment, exit code, words in the log
    (
        "j8cb01u1q",
        "acs",
        {"CALDP_STANDIN_FAIL": "2", "CALDP_STANDIN_ONLY": "calacs.e"},
        23,
        "calacs.e exited 2",
    ),
    (
        "j8cb01u1q",
        "acs",
        {"CALDP_STANDIN_FAIL": "1", "CALDP_STANDIN_ONLY": "runastrodriz"},
        24,
        "runastrodriz exited 1",
    ),
    (
        "j8cb01u1q",
        "acs",
        {"CALDP_STANDIN_MEMORYERROR": "1", "CALDP_STANDIN_ONLY": "calacs.e"},
        31,
        "MemoryError",
    ),
    (
        "j8cb01u1q",
        "acs",
        {"CALDP_STANDIN_MEMORYERROR": "1", "CALDP_STANDIN_ONLY": "runastrodriz"},
        31,
        "MemoryError",
    ),
    (
        "ibbb01abq",
        "wfc3",
        {"CALDP_STANDIN_SIGNAL": "KILL", "CALDP_STANDIN_ONLY": "calwf3.e"},
        23,
        "killed by SIGKILL",
    ),
    (
        "ibbb01abq",
        "wfc3",
        {"CALDP_STANDIN_SIGNAL": "SEGV", "CALDP_STANDIN_ONLY": "runastrodriz"},
        24,
        "killed by SIGSEGV",
    ),
    (
        "ibbb01abq",
        "wfc3",
        {"CALDP_STANDIN_ENOMEM": "1", "CALDP_STANDIN_ONLY": "calwf3.e"},
        34,
        "Cannot allocate memory",
    ),
    ("ocmv0lw6q", "stis", {"CALDP_STANDIN_FAIL": "2"}, 23, "cs0.e exited 2"),
    ("acs_8ph_01", "svm", {"CALDP_STANDIN_FAIL": "1"}, 40, "runsinglehap exited 1"),
    ("acs_8ph_01", "svm", {"CALDP_STANDIN_MEMORYERROR": "1"}, 31, "MemoryError"),
    ("skycell-p2381x06y09", "mvm", {"CALDP_STANDIN_FAIL": "1"}, 41, "runmultihap exited 1"),
]


@pytest.mark.parametrize("dataset, instrument, env, code, words", PROGRAM_FAULTS)
def test_program_faults(pipeline_env, monkeypatch, dataset, instrument, env, code, words):
    tmp = pipeline_env
    src = tmp / "src"
    synthetic.make_dataset(src, dataset)
    before = hashes(src)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = tmp / "out"
    assert run(dataset, src, out) == code
    log = assert_failed_cleanly(out, dataset, instrument, code)
    assert words in log
    assert hashes(src) == before
    assert (out / f"data/{instrument}/{dataset}/{dataset}_inputs.tar.gz").exists()


SIMULATED = [
    (1, "GENERIC_ERROR"),
    (21, "INPUT_TAR_FILE_ERROR"),
    (23, "STAGE1_ERROR"),
    (24, "STAGE2_ERROR"),
    (27, "BESTREFS_ERROR"),
    (31, "SUBPROCESS_MEMORY_ERROR"),
    (32, "CALDP_MEMORY_ERROR"),
    (33, "CONTAINER_MEMORY_ERROR"),
    (34, "OS_MEMORY_ERROR"),
    (143, "terminated by SIGTERM (simulated, CALDP_SIMULATE_ERROR) -> exit 143 TERMINATED"),
]


@pytest.mark.parametrize("code, name", SIMULATED)
def test_simulated_errors(pipeline_env, monkeypatch, code, name):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", str(code))
    out = tmp / "out"
    assert run("j8cb01u1q", tmp / "src", out) == code
    log = assert_failed_cleanly(out, "j8cb01u1q", "acs", code)
    assert name in log


def test_simulated_upload_error_still_writes_processing_and_a_final_message(
    pipeline_env, monkeypatch
):
    """=25 fails the delivery, as an upload failure would: the output was checked and
    ``processing-`` written first, and the run ends with ``error-``."""
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", "25")
    out = tmp / "out"
    assert run("j8cb01u1q", tmp / "src", out) == 25
    assert messages(out) == ["error-j8cb01u1q"]
    work_log = Path(os.environ["CALDP_HOME"]) / "caldp-work/j8cb01u1q/logs/process.txt"
    text = work_log.read_text()
    assert "step check output: done" in text
    assert "step deliver: FAILED" in text and "simulated error 25" in text


@pytest.mark.parametrize("value", ["99", "abc", "-3", "25x"])
def test_a_simulated_error_that_is_not_a_caldp_code_is_ignored(pipeline_env, monkeypatch, value):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", value)
    out = tmp / "out"
    assert run("j8cb01u1q", tmp / "src", out) == 0
    assert messages(out) == ["processed-j8cb01u1q.trigger"]
    text = (out / "data/acs/j8cb01u1q/logs/process.txt").read_text()
    assert f"CALDP_SIMULATE_ERROR={value!r} is not a caldp exit code: ignored" in text


@pytest.mark.parametrize("dataset, code", [("acs_8ph_01", 40), ("skycell-p2381x06y09", 41)])
def test_simulated_mosaic_errors(pipeline_env, monkeypatch, dataset, code):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", dataset)
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", str(code))
    assert run(dataset, tmp / "src", tmp / "out") == code


def test_preview_failure_still_delivers_products(pipeline_env, monkeypatch):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    monkeypatch.setenv("CALDP_SIMULATE_ERROR", "28")
    out = tmp / "out"
    assert run("j8cb01u1q", tmp / "src", out) == 28
    assert messages(out) == ["error-j8cb01u1q"]
    delivered = tree(out / "data/acs/j8cb01u1q")
    assert "j8cb01u1q_flt.fits" in delivered and "j8cb01u1q_drz.fits" in delivered
    assert not any(name.endswith("_inputs.tar.gz") for name in delivered)


def test_no_inputs_found(pipeline_env):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    out = tmp / "out"
    assert run("j8cb01u2q", tmp / "src", out) == 21
    assert messages(out) == ["error-j8cb01u2q"]
    assert (
        "no input files for j8cb01u2q" in (out / "data/acs/j8cb01u2q/logs/process.txt").read_text()
    )


def test_two_tarballs(pipeline_env):
    tmp = pipeline_env
    src = tmp / "src"
    files = synthetic.make_dataset(tmp / "staging", "j8cb01u1q")
    src.mkdir()
    make_tarball(src, "j8cb01u1q.tar.gz", files)
    make_tarball(src, "j8cb01u1q_again.tar.gz", files)
    assert run("j8cb01u1q", src, tmp / "out") == 21


def test_missing_input_folder(pipeline_env):
    tmp = pipeline_env
    assert run("j8cb01u1q", tmp / "nowhere", tmp / "out") == 21


def test_bestrefs_error_count_is_27(pipeline_env, monkeypatch):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    raw = tmp / "src" / "j8cb01u1q_raw.fits"
    with fits.open(raw, mode="update") as hdul:
        hdul[0].header["DETECTOR"] = "NOSUCH"
    out = tmp / "out"
    assert run("j8cb01u1q", tmp / "src", out) == 27
    assert "CRDS reported" in assert_failed_cleanly(out, "j8cb01u1q", "acs", 27)
    assert records(tmp) == []  # no program ran


def test_unknown_context_is_27(pipeline_env, monkeypatch):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    monkeypatch.setenv("CRDS_CONTEXT", "hst_9999.pmap")
    assert run("j8cb01u1q", tmp / "src", tmp / "out") == 27


def test_real_cos_association_missing_references_is_23(pipeline_env, testdata):
    """Real calcos on the real ldfd01010 association fails: the cache has no COS references."""
    tmp = pipeline_env
    out = tmp / "out"
    assert run("ldfd01010", testdata / "cos" / "ldfd01010" / "raw", out) == 23
    log = assert_failed_cleanly(out, "ldfd01010", "cos", 23)
    assert "calcos exited" in log


def test_unwritable_output_is_25(pipeline_env):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    blocker = tmp / "afile"
    blocker.write_text("not a folder")
    assert run("j8cb01u1q", tmp / "src", blocker / "out") == 25
    work = Path(os.environ["CALDP_HOME"]) / "caldp-work" / "j8cb01u1q"
    log = (work / "logs" / "process.txt").read_text()
    assert "not writable" in log
    assert records(tmp) == []  # nothing calibrated before the output was checked
    last = log.splitlines()[-1]  # also the console's: where to look, with nothing delivered
    assert last.endswith(
        f"exit 25 S3_UPLOAD_ERROR; the full log is kept in {work}/logs/process.txt"
    )


def test_sigterm_delivers_logs_and_error_message(pipeline_env):
    """AWS Batch stops jobs with SIGTERM: logs and an error- message still go out, and the
    status is 143 (not the step's failure code)."""
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    out = tmp / "out"
    env = dict(os.environ, CALDP_STANDIN_HANG="1", CALDP_STANDIN_ONLY="calacs.e")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caldp",
            "j8cb01u1q",
            f"file:{tmp / 'src'}",
            f"file:{out}",
            "caldp-config-local",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not records(tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert records(tmp), "calacs.e stand-in never started"
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    log = assert_failed_cleanly(out, "j8cb01u1q", "acs", 143)
    assert "step stage1 failed: terminated by SIGTERM -> exit 143 TERMINATED" in log
    pid = records(tmp)[0].get("pid")
    if pid:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.fault(
    "the final message written before the delivery is complete (file: output)",
    "when processed-/error- appears, every file it lists is already in place",
)
@pytest.mark.parametrize("fail", [False, True], ids=["processed", "error"])
def test_the_final_message_comes_after_the_delivery(pipeline_env, monkeypatch, fail):
    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb010b0")
    if fail:
        monkeypatch.setenv("CALDP_STANDIN_FAIL", "2")
        monkeypatch.setenv("CALDP_STANDIN_ONLY", "runastrodriz")
    out = tmp / "out"
    name = "error-j8cb010b0" if fail else "processed-j8cb010b0.trigger"
    before_message: dict[str, list[str]] = {}
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == name:  # the final message is about to appear
            before_message[name] = tree(out)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    assert run("j8cb010b0", tmp / "src", out) == (24 if fail else 0)
    lines = (out / "messages" / name).read_text().splitlines()
    assert lines[0] == name
    delivered = [f for f in tree(out) if not f.startswith("messages/")]
    assert len(delivered) >= 5 and sorted(lines[1:]) == delivered
    held = [f for f in before_message[name] if not f.startswith("messages/")]
    assert [f for f in held if not Path(f).name.startswith(".")] == delivered  # not the lock


@pytest.mark.parametrize("layout", ["instrument", "flat-without-marker"])
def test_reference_folders_follow_the_cache_layout(
    pipeline_env, monkeypatch, standin_crds_cache, layout
):
    """A read-only cache laid out per instrument, or flat with no marker (CRDS
    then says "instrument"): the programs are told the folder the files are in."""
    cache = pipeline_env / "crds_cache"
    config = cache / "config" / "hst"
    shutil.copytree(standin_crds_cache / "config" / "hst", config)
    (cache / "mappings").mkdir()
    (cache / "mappings" / "hst").symlink_to(standin_crds_cache / "mappings" / "hst")
    placeholders = standin_crds_cache / "references" / "hst"
    if layout == "instrument":
        (config / "ref_cache_subdir_mode").write_text("instrument\n")
        (cache / "references" / "hst").mkdir(parents=True)
        (cache / "references" / "hst" / "acs").symlink_to(placeholders)
        expected = f"{cache}/references/hst/acs/"
    else:
        (config / "ref_cache_subdir_mode").unlink()
        (cache / "references").mkdir()
        (cache / "references" / "hst").symlink_to(placeholders)
        expected = f"{cache}/references/hst/"
    monkeypatch.setenv("CRDS_PATH", str(cache))
    inputs = pipeline_env / "in"
    synthetic.make_dataset(inputs, "j8cb01010")
    assert run("j8cb01010", inputs, pipeline_env / "out") == 0
    runs = records(pipeline_env)
    assert [r["program"] for r in runs] == ["calacs.e", "runastrodriz"]
    assert {r["env"]["jref"] for r in runs} == {expected}


def _unusable_home(tmp: Path, how: str) -> Path:
    if how == "a file":
        home = tmp / "home-file"
        home.write_text("not a folder\n")
    elif how == "parent is a file":
        (tmp / "plain-file").write_text("not a folder\n")
        home = tmp / "plain-file" / "home"
    else:  # read-only: a read-only tmpfs (root writes through permission bits)
        home = tmp / "home-ro"
        home.mkdir()
        argv = ["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(home)]
        if os.geteuid() != 0 or subprocess.run(argv, capture_output=True).returncode != 0:
            pytest.skip("needs a read-only tmpfs mount (root)")
    return home


@pytest.mark.fault(
    "an unusable CALDP_HOME (a file, under a file, read-only)",
    "exit 29 WORK_FOLDER_ERROR, the logs and error- delivered",
)
@pytest.mark.parametrize("how", ["a file", "parent is a file", "read-only"])
def test_an_unusable_caldp_home_is_29_with_logs_and_error_message(pipeline_env, monkeypatch, how):
    import tempfile

    tmp = pipeline_env
    synthetic.make_dataset(tmp / "src", "j8cb01u1q")
    home = _unusable_home(tmp, how)
    monkeypatch.setenv("CALDP_HOME", str(home))
    scratch = tmp / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp / "out"
    try:
        assert run("j8cb01u1q", tmp / "src", out) == 29
    finally:
        if how == "read-only":
            subprocess.run(["umount", "-l", str(home)], check=False)
    log = assert_failed_cleanly(out, "j8cb01u1q", "acs", 29)
    assert "step working folder failed" in log and str(home) in log
    assert "-> exit 29 WORK_FOLDER_ERROR" in log
    assert not list((out / "data/acs/j8cb01u1q").glob("*.tar.gz"))  # nothing was fetched

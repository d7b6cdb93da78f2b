"""The calibration-program stand-ins, run as real processes on synthetic inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from astropy.io import fits

from tests.support import synthetic
from tests.support.standins import PROGRAMS, STANDIN_DIR, standin_env


@pytest.fixture
def refs(tmp_path: Path) -> Path:
    folder = tmp_path / "references"
    folder.mkdir()
    return folder


@pytest.fixture
def env(refs: Path) -> dict[str, str]:
    """Stand-ins first on PATH, no inherited fault settings, reference dirs set."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CALDP_STANDIN_")}
    for name in ("jref", "iref", "oref", "lref", "nref", "uref"):
        base[name] = f"{refs}/"
    return standin_env(base)


def provide_references(cwd: Path, env: dict[str, str]) -> list[Path]:
    """An empty file for every ``<var>$<file>`` reference named by the FITS files
    under ``cwd``, in the folder ``<var>`` names (the stand-ins open them)."""
    made = []
    for path in sorted(cwd.rglob("*.fits")):
        if path.stat().st_size == 0:
            continue  # a reference made here
        for value in fits.getheader(path).values():
            var, dollar, name = str(value).strip().partition("$")
            if dollar and env.get(var) and os.path.isdir(env[var]):
                made.append(Path(env[var]) / name)
                made[-1].touch()
    return made


def run(
    argv: list[str], cwd: Path, env: dict[str, str], *, references: bool = True, **extra: str
) -> subprocess.CompletedProcess[bytes]:
    if references:
        for folder in {cwd} | {Path(a).parent for a in argv if os.path.isabs(a)}:
            provide_references(folder, env)
    return subprocess.run(  # noqa: S603 - the stand-ins, found on the given PATH
        argv, cwd=cwd, env={**env, **extra}, capture_output=True, timeout=60, check=False
    )


def text(result: subprocess.CompletedProcess[bytes]) -> str:
    return (result.stdout + result.stderr).decode("utf-8", "replace")


def sci_extensions(path: Path) -> list[fits.ImageHDU]:
    with fits.open(path) as hdul:
        return [hdu.copy() for hdu in hdul if hdu.name == "SCI"]


# ---------------------------------------------------------------------------
# the folder itself


def test_standin_env_puts_the_folder_first() -> None:
    base = {"PATH": "/usr/bin:/bin", "OTHER": "x"}
    env = standin_env(base)
    assert env["PATH"].split(os.pathsep)[0] == str(STANDIN_DIR)
    assert env["PATH"].endswith("/usr/bin:/bin")
    assert env["OTHER"] == "x"
    assert base["PATH"] == "/usr/bin:/bin"  # the base is not modified
    assert standin_env(env)["PATH"].count(str(STANDIN_DIR)) == 1


@pytest.mark.parametrize("program", PROGRAMS)
def test_programs_are_labelled_executable_scripts(program: str) -> None:
    path = STANDIN_DIR / program
    assert os.access(path, os.X_OK)
    content = path.read_text(encoding="utf-8")
    assert content.startswith("#!/usr/bin/env python3\n")
    assert "STAND-IN for tests, never shipped" in content


def test_every_standin_file_is_labelled() -> None:
    files = sorted(p for p in STANDIN_DIR.iterdir() if p.is_file() and p.suffix != ".pyc")
    assert len(files) == len(PROGRAMS) + 4  # the programs, __init__ and three modules
    for path in files:
        assert "STAND-IN for tests, never shipped" in path.read_text(encoding="utf-8"), path


# ---------------------------------------------------------------------------
# stage 1


def test_calacs_association(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_acs_association(tmp_path, "j8cb01010", members=3)
    result = run(["calacs.e", "-v", "j8cb01010_asn.fits"], tmp_path, env)
    assert result.returncode == 0, text(result)
    assert b"CALACS complete" in result.stdout
    assert b"calacs.e:" in result.stderr  # progress on both streams
    for member in ("j8cb01a1q", "j8cb01a2q", "j8cb01a3q"):
        for suffix in ("flt", "flc"):
            scis = sci_extensions(tmp_path / f"{member}_{suffix}.fits")
            assert len(scis) == 2  # two WFC chips
            assert scis[0].data.dtype.name == "float32"
            assert scis[0].data.shape == (64, 64)
        with fits.open(tmp_path / f"{member}_flt.fits") as hdul:
            assert [h.name for h in hdul[1:]] == ["SCI", "ERR", "DQ"] * 2
            assert hdul[0].header["ROOTNAME"] == member
            assert "standin" in hdul[0].header["CAL_VER"]
            assert "STAND-IN" in str(hdul[0].header["HISTORY"])
        trailer = (tmp_path / f"{member}.tra").read_text()
        assert f"Processing {member}_raw.fits" in trailer
    for product in ("j8cb01011_crj.fits", "j8cb01011_crc.fits"):
        with fits.open(tmp_path / product) as hdul:
            assert hdul[0].header["ROOTNAME"] == "j8cb01011"
            assert hdul["SCI", 1].header["NCOMBINE"] == 3
    assert not list(tmp_path.glob("*_drz.fits"))  # drizzling is stage 2


def test_calacs_skips_members_not_present(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_acs_association(tmp_path, "j8cb01010", members=3, missing=["j8cb01a2q"])
    result = run(["calacs.e", "j8cb01010_asn.fits"], tmp_path, env)
    assert result.returncode == 0, text(result)
    assert (tmp_path / "j8cb01a1q_flt.fits").is_file()
    assert not (tmp_path / "j8cb01a2q_flt.fits").exists()


def test_calacs_single_raw_and_hrc(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_acs_raw(tmp_path, "j8cb02a1q")
    synthetic.make_acs_raw(tmp_path, "j8bt05njq", detector="HRC")
    assert run(["calacs.e", "j8cb02a1q_raw.fits"], tmp_path, env).returncode == 0
    assert run(["calacs.e", "--nthreads", "2", "j8bt05njq_raw.fits"], tmp_path, env).returncode == 0
    assert (tmp_path / "j8cb02a1q_flc.fits").is_file()
    assert len(sci_extensions(tmp_path / "j8bt05njq_flt.fits")) == 1
    assert not (tmp_path / "j8bt05njq_flc.fits").exists()  # HRC has no CTE-corrected flc
    assert not list(tmp_path.glob("*_crj.fits"))


def test_calacs_refuses_another_instrument(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_wfc3_raw(tmp_path, "ibqt02a1q")
    result = run(["calacs.e", "ibqt02a1q_raw.fits"], tmp_path, env)
    assert result.returncode == 2
    assert "INSTRUME" in (tmp_path / "ibqt02a1q.tra").read_text()


def test_calwf3_uvis_association_and_ir(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_wfc3_association(tmp_path, "ibqt01010")
    synthetic.make_wfc3_raw(tmp_path, "ibqt03b1q", detector="IR", nsamp=4)
    assert run(["calwf3.e", "ibqt01010_asn.fits"], tmp_path, env).returncode == 0
    assert run(["calwf3.e", "-1", "ibqt03b1q_raw.fits"], tmp_path, env).returncode == 0
    for name in (
        "ibqt01a1q_flt",
        "ibqt01a1q_flc",
        "ibqt01a2q_flc",
        "ibqt01011_crj",
        "ibqt01011_crc",
    ):
        assert len(sci_extensions(tmp_path / f"{name}.fits")) == 2
    assert len(sci_extensions(tmp_path / "ibqt03b1q_ima.fits")) == 4
    assert len(sci_extensions(tmp_path / "ibqt03b1q_flt.fits")) == 1
    assert not (tmp_path / "ibqt03b1q_flc.fits").exists()
    assert (tmp_path / "ibqt03b1q.tra").is_file()


def test_cs0_spectroscopic_raw_with_wavecal(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_stis_raw(tmp_path, "odj701ujq", wav=True, epc=True)
    result = run(["cs0.e", "-tv", "odj701ujq_raw.fits"], tmp_path, env)
    assert result.returncode == 0, text(result)
    for suffix in ("flt", "x2d", "x1d"):
        assert (tmp_path / f"odj701ujq_{suffix}.fits").is_file()
    with fits.open(tmp_path / "odj701ujq_x1d.fits") as hdul:
        row = hdul["SCI"].data[0]
        assert row["NELEM"] == 64 and len(row["WAVELENGTH"]) == 64
        assert row["WAVELENGTH"][0] < row["WAVELENGTH"][-1]
    assert "odj701ujq_raw.fits" in (tmp_path / "odj701ujq.tra").read_text()


def test_cs0_wav_only_and_imaging(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_stis_wav_only(tmp_path, "odj702w1q")
    synthetic.make_stis_raw(tmp_path, "odj703k1q", obstype="IMAGING")
    assert run(["cs0.e", "-tv", "odj702w1q_wav.fits"], tmp_path, env).returncode == 0
    assert (tmp_path / "odj702w1q_flt.fits").is_file()
    assert run(["cs0.e", "-tv", "odj703k1q_raw.fits"], tmp_path, env).returncode == 0
    assert (tmp_path / "odj703k1q_flt.fits").is_file()
    assert not (tmp_path / "odj703k1q_x1d.fits").exists()  # imaging: no spectrum


# ---------------------------------------------------------------------------
# stage 2


def test_runastrodriz_after_calacs(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_acs_association(tmp_path, "j8cb01010")
    assert run(["calacs.e", "j8cb01010_asn.fits"], tmp_path, env).returncode == 0
    before = (tmp_path / "j8cb01a1q.tra").read_text()
    result = run(["runastrodriz", "-n", "1", "j8cb01010_asn.fits"], tmp_path, env)
    assert result.returncode == 0, text(result)
    for product in ("j8cb01010_drz.fits", "j8cb01010_drc.fits"):
        with fits.open(tmp_path / product) as hdul:
            assert [h.name for h in hdul[1:]] == ["SCI", "WHT", "CTX"]
            assert hdul["SCI"].data.dtype.name == "float32"
            assert hdul["SCI"].data.shape == (128, 64)  # the two chips mosaicked
    assert (tmp_path / "j8cb01a1q_hlet.fits").is_file()
    assert (tmp_path / "j8cb01a2q_hlet.fits").is_file()
    after = (tmp_path / "j8cb01a1q.tra").read_text()
    assert after.startswith(before) and "runastrodriz" in after[len(before) :]


def test_runastrodriz_without_stage1_fails_like_python(tmp_path: Path, env) -> None:
    synthetic.make_wfc3_raw(tmp_path, "ibqt02a1q")
    result = run(["runastrodriz", "ibqt02a1q_raw.fits"], tmp_path, env)
    assert result.returncode == 1
    assert b"Traceback (most recent call last):" in result.stderr
    assert b"FileNotFoundError" in result.stderr
    assert not list(tmp_path.glob("*_drz.fits"))


def test_runastrodriz_ir_makes_only_drz(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_wfc3_raw(tmp_path, "ibqt03b1q", detector="IR")
    assert run(["calwf3.e", "ibqt03b1q_raw.fits"], tmp_path, env).returncode == 0
    assert run(["runastrodriz", "ibqt03b1q_raw.fits"], tmp_path, env).returncode == 0
    assert (tmp_path / "ibqt03b1q_drz.fits").is_file()
    assert not (tmp_path / "ibqt03b1q_drc.fits").exists()


# ---------------------------------------------------------------------------
# SVM and MVM


def test_runsinglehap(tmp_path: Path, env: dict[str, str]) -> None:
    inputs = tmp_path / "inputs"
    synthetic.make_svm_inputs(inputs, "acs_8ph_01")
    work = tmp_path / "work"
    work.mkdir()
    result = run(["runsinglehap", str(inputs / "acs_8ph_01_input.out")], work, env)
    assert result.returncode == 0, text(result)
    expected = [
        "hst_10265_01_acs_wfc_f606w_j8ph01_drc.fits",
        "hst_10265_01_acs_wfc_f814w_j8ph01_drc.fits",
        "hst_10265_01_acs_wfc_total_j8ph01_drc.fits",
    ]
    assert (work / "acs_8ph_01_manifest.txt").read_text().split() == expected
    for name in expected:
        with fits.open(work / name) as hdul:
            assert hdul["SCI"].data.shape == (128, 64)
    assert (work / "astrodrizzle.log").read_text().count("hst_") == 3
    assert (work / "j8ph01a1q_flc.fits").is_file()  # copied from the poller's path


def test_runmultihap(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_mvm_inputs(tmp_path, "skycell-p2381x06y09")
    result = run(["runmultihap", "skycell-p2381x06y09_input.out"], tmp_path, env)
    assert result.returncode == 0, text(result)
    expected = [
        "hst_skycell-p2381x06y09_acs_wfc_f606w_all_drc.fits",
        "hst_skycell-p2381x06y09_acs_wfc_f814w_all_drc.fits",
    ]
    assert (tmp_path / "skycell-p2381x06y09_manifest.txt").read_text().split() == expected
    assert all((tmp_path / name).is_file() for name in expected)
    assert (tmp_path / "astrodrizzle.log").is_file()


def test_hap_missing_flc_fails(tmp_path: Path, env: dict[str, str]) -> None:
    synthetic.make_svm_inputs(tmp_path, "acs_8ph_01", missing=["j8ph01b2q_flc.fits"])
    result = run(["runsinglehap", "acs_8ph_01_input.out"], tmp_path, env)
    assert result.returncode == 1
    assert b"j8ph01b2q_flc.fits" in result.stderr and b"Traceback" in result.stderr
    assert not list(tmp_path.glob("hst_*"))


# ---------------------------------------------------------------------------
# command lines


@pytest.mark.parametrize(
    "argv",
    [
        ["calacs.e"],
        ["calacs.e", "-x", "j8cb02a1q_raw.fits"],
        ["calacs.e", "j8cb02a1q_raw.fits", "j8cb02a1q_raw.fits"],
        ["calacs.e", "--nthreads", "zero", "j8cb02a1q_raw.fits"],
        ["calacs.e", "j8cb02a1q_flt.fits"],
        ["calacs.e", "j9zz99z9q_raw.fits"],
        ["calwf3.e", "--bogus", "j8cb02a1q_raw.fits"],
        ["cs0.e"],
        ["cs0.e", "-tv", "j8cb02a1q_flt.fits"],
        ["runastrodriz"],
        ["runastrodriz", "-n", "x", "j8cb02a1q_raw.fits"],
        ["runastrodriz", "-z", "j8cb02a1q_raw.fits"],
        ["runsinglehap"],
        ["runmultihap", "a_input.out", "b_input.out"],
    ],
)
def test_bad_command_lines_exit_2(tmp_path: Path, env, argv: list[str]) -> None:
    synthetic.make_acs_raw(tmp_path, "j8cb02a1q")
    result = run(argv, tmp_path, env)
    assert result.returncode == 2, text(result)
    assert b"usage" in result.stderr.lower() or b"syntax" in result.stderr
    assert not list(tmp_path.glob("*_flt.fits"))


@pytest.mark.parametrize("program", PROGRAMS)
def test_version_and_help(tmp_path: Path, env, program: str) -> None:
    version = run([program, "--version"], tmp_path, env)
    assert version.returncode == 0 and b"STAND-IN" in version.stdout
    helped = run([program, "--help" if program.endswith(".e") else "-h"], tmp_path, env)
    assert helped.returncode == 0 and program.encode() in helped.stdout


# ---------------------------------------------------------------------------
# reference directories


@pytest.mark.parametrize(
    "jref, expected",
    [
        (None, "is not set"),
        ("NO_SLASH", "does not end with '/'"),
        ("MISSING", "is not an existing directory"),
    ],
)
def test_reference_directory_must_resolve(tmp_path, env, refs, jref, expected) -> None:
    synthetic.make_acs_raw(tmp_path, "j8cb02a1q")
    env = dict(env)
    if jref is None:
        del env["jref"]
    elif jref == "NO_SLASH":
        env["jref"] = str(refs)
    else:
        env["jref"] = f"{tmp_path}/missing/"
    result = run(["calacs.e", "j8cb02a1q_raw.fits"], tmp_path, env)
    assert result.returncode == 2
    assert expected in result.stdout.decode()
    assert expected in (tmp_path / "j8cb02a1q.tra").read_text()
    assert not (tmp_path / "j8cb02a1q_flt.fits").exists()


@pytest.mark.parametrize(
    "program, make, argv",
    [
        ("calacs.e", synthetic.make_acs_raw, ["j8cb02a1q_raw.fits"]),
        ("calwf3.e", synthetic.make_wfc3_raw, ["ibqt03b1q_raw.fits"]),
        ("cs0.e", synthetic.make_stis_raw, ["-tv", "odj701ujq_raw.fits"]),
    ],
)
def test_every_named_reference_is_opened(tmp_path, env, refs, program, make, argv) -> None:
    make(tmp_path, argv[-1].split("_")[0])
    made = provide_references(tmp_path, env)
    assert made
    assert run([program, *argv], tmp_path, env).returncode == 0
    for missing in (made[0], made[-1]):  # any one of them
        missing.rename(missing.with_name("moved"))
        result = run([program, *argv], tmp_path, env, references=False)
        assert result.returncode == 2
        assert f"cannot open {missing}" in result.stdout.decode()
        missing.with_name("moved").rename(missing)


def test_drizzlepac_standins_open_the_references_of_their_inputs(tmp_path, env, refs) -> None:
    synthetic.make_acs_raw(tmp_path, "j8cb02a1q")
    assert run(["calacs.e", "j8cb02a1q_raw.fits"], tmp_path, env).returncode == 0
    idc = fits.getheader(tmp_path / "j8cb02a1q_flt.fits")["IDCTAB"].split("$")[1]
    (refs / idc).unlink()
    result = run(["runastrodriz", "-n", "1", "j8cb02a1q_raw.fits"], tmp_path, env, references=False)
    assert result.returncode == 1
    assert idc in text(result)
    work = tmp_path / "svm"
    synthetic.make_svm_inputs(work, "acs_8ph_01")
    provide_references(work, env)
    (refs / idc).unlink(missing_ok=True)
    result = run(["runsinglehap", "acs_8ph_01_input.out"], work, env, references=False)
    assert result.returncode == 1, text(result)
    assert "not opened" in text(result)


# ---------------------------------------------------------------------------
# faults


@pytest.fixture
def acs_raw(tmp_path: Path) -> Path:
    synthetic.make_acs_raw(tmp_path, "j8cb02a1q")
    return tmp_path


def test_fail_writes_partial_trailer(acs_raw: Path, env) -> None:
    result = run(["calacs.e", "j8cb02a1q_raw.fits"], acs_raw, env, CALDP_STANDIN_FAIL="7")
    assert result.returncode == 7
    trailer = (acs_raw / "j8cb02a1q.tra").read_text()
    assert "CALACS" in trailer and "complete" not in trailer
    assert not (acs_raw / "j8cb02a1q_flt.fits").exists()


@pytest.mark.parametrize("name", ["KILL", "SEGV", "TERM", "SIGINT"])
def test_signal(acs_raw: Path, env, name: str) -> None:
    result = run(["calacs.e", "j8cb02a1q_raw.fits"], acs_raw, env, CALDP_STANDIN_SIGNAL=name)
    expected = getattr(signal, name if name.startswith("SIG") else "SIG" + name)
    assert result.returncode == -expected
    assert not (acs_raw / "j8cb02a1q_flt.fits").exists()
    assert not list(acs_raw.glob("core*"))


@pytest.mark.parametrize("program", ["calacs.e", "runsinglehap"])
def test_memory_error(tmp_path: Path, env, program: str) -> None:
    if program == "calacs.e":
        synthetic.make_acs_raw(tmp_path, "j8cb02a1q")
        argv = [program, "j8cb02a1q_raw.fits"]
    else:
        synthetic.make_svm_inputs(tmp_path, "acs_8ph_01")
        argv = [program, "acs_8ph_01_input.out"]
    result = run(argv, tmp_path, env, CALDP_STANDIN_MEMORYERROR="1")
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert "Traceback (most recent call last):" in lines
    assert lines[-1] == "MemoryError"


def test_enomem(acs_raw: Path, env) -> None:
    result = run(["calacs.e", "j8cb02a1q_raw.fits"], acs_raw, env, CALDP_STANDIN_ENOMEM="1")
    assert result.returncode == 1
    assert b"OSError: [Errno 12] Cannot allocate memory" in result.stderr


def test_bad_bytes_then_carry_on(acs_raw: Path, env) -> None:
    result = run(["calacs.e", "j8cb02a1q_raw.fits"], acs_raw, env, CALDP_STANDIN_BADBYTES="1")
    assert result.returncode == 0
    assert b"\xff\xfe\x80" in result.stdout
    with pytest.raises(UnicodeDecodeError):
        result.stdout.decode("utf-8")
    assert (acs_raw / "j8cb02a1q_flt.fits").is_file()


def test_hang_until_killed(acs_raw: Path, env) -> None:
    proc = subprocess.Popen(  # noqa: S603
        ["calacs.e", "j8cb02a1q_raw.fits"],
        cwd=acs_raw,
        env={**env, "CALDP_STANDIN_HANG": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # progress arrives line by line
        assert b"CALACS" in first
        time.sleep(0.5)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == -signal.SIGTERM


def test_sleep(acs_raw: Path, env) -> None:
    start = time.monotonic()
    result = run(["calacs.e", "j8cb02a1q_raw.fits"], acs_raw, env, CALDP_STANDIN_SLEEP="1.2")
    assert result.returncode == 0
    assert time.monotonic() - start >= 1.2


@pytest.mark.parametrize("status", ["55", "65"])
def test_exit_after_work(tmp_path: Path, env, status: str) -> None:
    synthetic.make_svm_inputs(tmp_path, "acs_8ph_01", per_filter=1)
    result = run(["runsinglehap", "acs_8ph_01_input.out"], tmp_path, env, CALDP_STANDIN_EXIT=status)
    assert result.returncode == int(status)
    assert (tmp_path / "acs_8ph_01_manifest.txt").read_text().strip()


def test_no_products(acs_raw: Path, env) -> None:
    result = run(["calacs.e", "j8cb02a1q_raw.fits"], acs_raw, env, CALDP_STANDIN_NO_PRODUCTS="1")
    assert result.returncode == 0
    assert not list(acs_raw.glob("*_fl?.fits"))
    assert "complete" in (acs_raw / "j8cb02a1q.tra").read_text()


def test_only_restricts_faults_to_one_program(acs_raw: Path, env) -> None:
    faults = {"CALDP_STANDIN_FAIL": "3", "CALDP_STANDIN_ONLY": "runastrodriz"}
    assert run(["calacs.e", "j8cb02a1q_raw.fits"], acs_raw, env, **faults).returncode == 0
    assert (acs_raw / "j8cb02a1q_flt.fits").is_file()
    stage2 = run(["runastrodriz", "-n", "1", "j8cb02a1q_raw.fits"], acs_raw, env, **faults)
    assert stage2.returncode == 3
    assert not (acs_raw / "j8cb02a1q_drz.fits").exists()


# ---------------------------------------------------------------------------
# the record file


def test_record_file(acs_raw: Path, env, refs: Path) -> None:
    record = acs_raw / "record.jsonl"
    extra = {
        "CALDP_STANDIN_RECORD": str(record),
        "CALDP_STANDIN_RECORD_VARS": "CRDS_CONTEXT, MY_SETTING",
        "CRDS_CONTEXT": "hst_0729.pmap",
    }
    env = {k: v for k, v in env.items() if k != "uref"}
    assert run(["calacs.e", "-t", "j8cb02a1q_raw.fits"], acs_raw, env, **extra).returncode == 0
    assert (
        run(["runastrodriz", "-n", "1", "j8cb02a1q_raw.fits"], acs_raw, env, **extra).returncode
        == 0
    )
    assert run(["calacs.e", "--bogus"], acs_raw, env, **extra).returncode == 2
    entries = [json.loads(line) for line in record.read_text().splitlines()]
    assert [e["program"] for e in entries] == ["calacs.e", "runastrodriz", "calacs.e"]
    assert entries[0]["argv"] == ["-t", "j8cb02a1q_raw.fits"]
    assert entries[1]["argv"] == ["-n", "1", "j8cb02a1q_raw.fits"]
    assert entries[2]["argv"] == ["--bogus"]
    assert Path(entries[0]["cwd"]) == acs_raw
    recorded = entries[0]["env"]
    assert recorded["jref"] == f"{refs}/" and recorded["iref"] == f"{refs}/"
    assert recorded["uref"] is None
    assert recorded["CRDS_CONTEXT"] == "hst_0729.pmap"
    assert recorded["MY_SETTING"] is None
    assert "PATH" not in recorded  # only what was asked for

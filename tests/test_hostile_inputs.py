"""Hostile and broken inputs: each gets a clear error and its exit code, and nothing is
written outside the working folder (``$CALDP_HOME/caldp-work/<ds>``) and the output folder.

* tarballs: ``..``, absolute paths, symbolic and hard links pointing out, device
  files and FIFOs, a decompression bomb (real zeros beyond a lowered limit, and
  a header claiming a terabyte under the default limit), a truncated gzip,
  something that is not gzip at all, a member given twice -> 21;
* FITS: truncated (inside a block, at a block boundary, inside the data), not
  FITS, empty, a corrupt ``.fits.gz``, an association table that is not FITS or
  lacks ``MEMNAME`` -> 21; the keywords CRDS reads (``INSTRUME``, ``DETECTOR``,
  ``DATE-OBS``) missing -> 27;
* dataset names with path characters -> 2, before any work; a poller file naming
  paths outside the inputs -> 21;
* an env file setting ``PATH``, ``LD_PRELOAD``, ``PYTHONPATH`` ... : those lines
  are refused (logged, skipped), the programs that run are the real ones, and
  a real attack through each (a planted ``calacs.e``, ``sitecustomize.py``,
  preload library) never executes.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from astropy.io import fits

from caldp.cli import main
from tests.support import synthetic, tarballs
from tests.support.pipeline_helpers import hashes, make_tarball, messages, records, run, tree

DS = "j8cb01u1q"
RAW = f"{DS}_raw.fits"


@pytest.fixture(scope="session")
def raw_source(tmp_path_factory) -> Path:
    """One synthetic ACS raw, made once."""
    folder = tmp_path_factory.mktemp("hostile-source")
    synthetic.make_dataset(folder, DS)
    return folder / RAW


class World:
    """The test's folders, and a record of everything outside the two caldp may write to."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.src = tmp / "src"
        self.out = tmp / "out"
        self.outside = tmp / "outside"
        self.src.mkdir()
        self.outside.mkdir()
        (self.outside / "victim.txt").write_text("the user's file outside\n")
        self.before: dict[str, str] = {}

    @property
    def work(self) -> Path:
        return Path(os.environ["CALDP_HOME"]) / "caldp-work"

    def snapshot(self) -> dict[str, str]:
        allowed = (self.work, self.out, self.tmp / "record.jsonl")
        return {
            name: digest
            for name, digest in hashes(self.tmp).items()
            if not any((self.tmp / name).is_relative_to(a) for a in allowed)
        }

    def freeze(self) -> None:
        self.before = self.snapshot()

    def assert_nothing_outside(self) -> None:
        assert self.snapshot() == self.before, "files outside work/ and out/ changed"
        assert sorted(p.name for p in self.outside.iterdir()) == ["victim.txt"]

    def log(self, dataset: str = DS) -> str:
        return (self.work / dataset / "logs" / "process.txt").read_text()

    def assert_failed(self, code: int, words: str, dataset: str = DS) -> None:
        assert messages(self.out) == [f"error-{dataset}"], messages(self.out)
        log = self.log(dataset)
        error = [line for line in log.splitlines() if f"-> exit {code} " in line]
        assert error and words in error[-1], (words, error)
        assert not list(self.out.rglob(".*")), list(self.out.rglob(".*"))
        download = self.work / dataset / "download"
        assert not [p for p in download.rglob("*") if p.is_file()], "extracted members left"
        self.assert_nothing_outside()


@pytest.fixture
def world(pipeline_env) -> World:
    return World(pipeline_env)


# ----------------------------------------------------------------------------- tarballs


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def write_tarball(path: Path, raw: Path, hostile: list[tuple]) -> Path:
    """The dataset's real raw first (so something is extracted before the refusal), then
    the hostile members."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.add(raw, arcname=raw.name)
        for info, data in hostile:
            tar.addfile(info, data)
    return path


def terabyte_header(path: Path, raw: Path) -> Path:
    """A gzip stream whose tar header claims a 1 TiB member, followed by a little data."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(raw, arcname=raw.name)
    body = buf.getvalue().rstrip(b"\0")
    body += b"\0" * (-len(body) % 512)
    info = tarfile.TarInfo(f"{DS}_spt.fits")
    info.size = 2**40
    header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    path.write_bytes(gzip.compress(body + header + b"\0" * 4096))
    return path


TARBALLS: list[tuple[str, Callable[[World], list[tuple]], str]] = [
    ("dotdot", lambda w: [_member("../../../../outside/evil.fits", data=b"x")], "'..'"),
    ("dotdot-inside", lambda w: [_member("sub/../../evil.fits", data=b"x")], "'..'"),
    ("absolute", lambda w: [_member(str(w.outside / "abs.fits"), data=b"x")], "absolute path"),
    (
        "symlink-out",
        lambda w: [
            _member(f"{DS}_spt.fits", tarfile.SYMTYPE, linkname=str(w.outside / "victim.txt"))
        ],
        "is a symbolic link",
    ),
    (
        "symlink-dir-then-file",
        lambda w: [
            _member("escape", tarfile.SYMTYPE, linkname=str(w.outside)),
            _member("escape/evil.fits", data=b"x"),
        ],
        "is a symbolic link",
    ),
    (
        "hardlink-out",
        lambda w: [
            _member(f"{DS}_spt.fits", tarfile.LNKTYPE, linkname="../../../../outside/victim.txt")
        ],
        "is a hard link",
    ),
    (
        "char-device",
        lambda w: [_member("null", tarfile.CHRTYPE, devmajor=1, devminor=3)],
        "is a character device",
    ),
    (
        "block-device",
        lambda w: [_member("sda", tarfile.BLKTYPE, devmajor=8, devminor=0)],
        "is a block device",
    ),
    ("fifo", lambda w: [_member("pipe", tarfile.FIFOTYPE)], "is a FIFO"),
    ("duplicate", lambda w: [_member(RAW, data=b"SIMPLE")], "appears twice"),
    # Each of these passes every check but one, so that one is the only thing refusing it.
    ("dotdot-staying-inside", lambda w: [_member(f"sub/../{DS}_spt.fits", data=b"x")], "'..'"),
    ("unknown-type", lambda w: [_member(f"{DS}_spt.fits", b"V")], "of unsupported type 'V'"),
]


@pytest.mark.parametrize("builder, words", [t[1:] for t in TARBALLS], ids=[t[0] for t in TARBALLS])
def test_hostile_tarball_is_21(world, raw_source, builder, words):
    write_tarball(world.src / f"{DS}.tar.gz", raw_source, builder(world))
    world.freeze()
    before = hashes(world.src)
    assert run(DS, world.src, world.out) == 21
    world.assert_failed(21, words)
    assert hashes(world.src) == before
    assert records(world.tmp) == []  # no program ran


def test_decompression_bomb_is_21(world, raw_source, monkeypatch):
    """64 MiB of real zeros (64 KiB compressed) against a 16 MiB limit."""
    monkeypatch.setenv("CALDP_MAX_TAR_BYTES", str(16 * 2**20))
    path = world.src / f"{DS}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(raw_source, arcname=RAW)
        info = tarfile.TarInfo(f"{DS}_spt.fits")
        info.size = 64 * 2**20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert path.stat().st_size < 2**20
    world.freeze()
    assert run(DS, world.src, world.out) == 21
    world.assert_failed(21, "byte limit")


@pytest.mark.fault(
    "tarball members each under CALDP_MAX_TAR_BYTES adding up to more",
    "exit 21, nothing extracted left",
)
def test_several_members_each_under_the_limit_adding_up_to_more_is_21(
    world, raw_source, monkeypatch
):
    """Three members of 6 MiB of zeros against a 16 MiB limit: the limit is on their sum."""
    monkeypatch.setenv("CALDP_MAX_TAR_BYTES", str(16 * 2**20))
    path = world.src / f"{DS}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(raw_source, arcname=RAW)
        for suffix in ("spt", "trl", "jif"):
            info = tarfile.TarInfo(f"{DS}_{suffix}.fits")
            info.size = 6 * 2**20
            tar.addfile(info, io.BytesIO(bytes(info.size)))
    world.freeze()
    assert run(DS, world.src, world.out) == 21
    world.assert_failed(21, "add up to more than the 16777216 byte limit")


@pytest.mark.fault(
    "a .fits.gz bomb (64 KiB -> 64 MiB), in a tarball or a folder, limit 16 MiB",
    "exit 21 at fetch; nothing of it left in the working folder",
)
@pytest.mark.parametrize("where", ["tarball", "folder"])
def test_fits_gz_bomb_is_21(world, raw_source, monkeypatch, where):
    """A raw .fits.gz of 64 KiB that unpacks to 64 MiB, against a 16 MiB limit: the limit
    holds for what the inputs take once decompressed, whatever brought them."""
    monkeypatch.setenv("CALDP_MAX_TAR_BYTES", str(16 * 2**20))
    bomb = world.tmp / f"{RAW}.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(raw_source.read_bytes())
        for _ in range(64):
            f.write(bytes(2**20))
    assert bomb.stat().st_size < 2**20
    if where == "tarball":
        make_tarball(world.src, f"{DS}.tar.gz", [bomb])
    else:
        shutil.copy(bomb, world.src)
    world.freeze()
    assert run(DS, world.src, world.out) == 21
    work_bytes = sum(p.stat().st_size for p in world.work.rglob("*") if p.is_file())
    assert work_bytes < 2**20  # logs only: nothing of the bomb is left
    world.assert_failed(21, f"byte limit (CALDP_MAX_TAR_BYTES) once decompressed, at {RAW}.gz")
    assert records(world.tmp) == []


def test_terabyte_member_header_is_21_under_the_default_limit(world, raw_source):
    terabyte_header(world.src / f"{DS}.tar.gz", raw_source)
    world.freeze()
    assert run(DS, world.src, world.out) == 21
    world.assert_failed(21, "byte limit")


@pytest.mark.parametrize("cut", ["half", "header"])
def test_truncated_gzip_is_21(world, raw_source, cut):
    whole = make_tarball(world.tmp, "whole.tar.gz", [raw_source]).read_bytes()
    size = len(whole) // 2 if cut == "half" else 40
    (world.src / f"{DS}.tar.gz").write_bytes(whole[:size])
    world.freeze()
    assert run(DS, world.src, world.out) == 21
    world.assert_failed(21, "unreadable or truncated")


SCI_DATA = 14400  # where the synthetic raw's first SCI array starts


def _raw_and_env(raw_source: Path) -> list[tuple[str, bytes]]:
    """The raw, then the env file: with the stream cut after the raw, only the env file
    is lost and the dataset still looks complete."""
    return [(RAW, raw_source.read_bytes()), (f"{DS}_cal_env.txt", b"CALDP_EXAMPLE=1\n")]


@pytest.mark.fault(
    "a corrupt input tarball: CRC error, cut right after a member, no end-of-archive (file:)",
    "exit 21, error-, nothing calibrated",
)
@pytest.mark.parametrize(
    "damage, words",
    [
        ("cut_after_first_member", "end-of-stream marker"),
        ("no_end_of_archive", "no end-of-archive block"),
        ("flipped_byte", "CRC check failed"),
    ],
)
def test_corrupt_tarball_is_21_and_nothing_is_calibrated(world, raw_source, damage, words):
    """gzip's CRC and length, and the archive's own end, are checked before anything runs;
    the flipped byte is a pixel of the raw's first science array."""
    members = _raw_and_env(raw_source)
    build = getattr(tarballs, damage)
    data = build(members, at=SCI_DATA + 100) if damage == "flipped_byte" else build(members)
    (world.src / f"{DS}.tar.gz").write_bytes(data)
    world.freeze()
    assert run(DS, world.src, world.out) == 21
    world.assert_failed(21, words)
    assert records(world.tmp) == []  # nothing calibrated
    assert not (world.out / "data" / "acs" / DS / RAW).exists()


def test_not_gzip_is_21(world):
    (world.src / f"{DS}.tar.gz").write_bytes(b"PK\x03\x04 this is a zip file, not a tarball" * 50)
    world.freeze()
    assert run(DS, world.src, world.out) == 21
    world.assert_failed(21, "unreadable or truncated")


# ----------------------------------------------------------------------------- FITS


def _cut(size: Callable[[int], int]) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: size(len(data))])

    return mutate


def _without(key: str) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        with fits.open(path, mode="update") as hdul:
            del hdul[0].header[key]

    return mutate


def _corrupt_gzip(path: Path) -> None:
    data = gzip.compress(path.read_bytes())
    path.unlink()
    (path.parent / f"{path.name}.gz").write_bytes(data[: len(data) // 2])


BROKEN_FITS = [
    # id, mutation of the raw, exit code, words in the error line
    ("truncated-inside-a-block", _cut(lambda n: n // 2 + 100), 21, "whole number of 2880-byte"),
    ("truncated-at-a-block-boundary", _cut(lambda n: n - 2880), 21, "NEXTEND says 6"),
    ("truncated-inside-the-data", _cut(lambda n: 2880 * 6), 21, "may have been truncated"),
    ("not-fits", lambda p: p.write_text("this is not a FITS file\n" * 200), 21, "not FITS"),
    ("empty", lambda p: p.write_bytes(b""), 21, "not FITS"),
    ("corrupt-fits-gz", _corrupt_gzip, 21, "not a readable gzip file"),
    ("no-INSTRUME", _without("INSTRUME"), 27, "CRDS reported"),
    ("no-DETECTOR", _without("DETECTOR"), 27, "CRDS reported"),
    ("no-DATE-OBS", _without("DATE-OBS"), 27, "CRDS reported"),
]


@pytest.mark.parametrize(
    "mutate, code, words", [b[1:] for b in BROKEN_FITS], ids=[b[0] for b in BROKEN_FITS]
)
def test_broken_fits_input(world, raw_source, mutate, code, words):
    shutil.copy(raw_source, world.src / RAW)
    mutate(world.src / RAW)
    world.freeze()
    before = hashes(world.src)
    assert run(DS, world.src, world.out) == code
    world.assert_failed(code, words)
    assert hashes(world.src) == before
    assert records(world.tmp) == []  # refused before any program ran
    if code == 27:
        assert "ERROR   CRDS:" in world.log()  # CRDS's own words say which keyword


@pytest.mark.parametrize("damage", ["not-fits", "no-MEMNAME"])
def test_broken_association_table_is_21(world, damage):
    asn = "j8cb010b0"
    synthetic.make_dataset(world.src, asn)
    table = world.src / f"{asn}_asn.fits"
    if damage == "not-fits":
        table.write_text("MEMNAME MEMTYPE\n")
    else:
        with fits.open(table) as hdul:
            columns = [c for c in hdul[1].columns if c.name != "MEMNAME"]
            hdul[1] = fits.BinTableHDU.from_columns(columns, name="ASN")
            hdul.writeto(table, overwrite=True)
    world.freeze()
    assert run(asn, world.src, world.out) == 21
    world.assert_failed(21, "cannot read the association table", asn)


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "../j8cb01u1q",
        "j8cb01u1q/..",
        "j8cb01u1q/",
        "/tmp/j8cb01u1q",
        "..",
        "acs_8ph/01",
        "skycell-p2381x06y09/../../x",
        "j8cb01u1q\n",
        "j8cb01u1q\x00",
        "..\\j8cb01u1q",
        " j8cb01u1q",
    ],
)
def test_dataset_name_with_path_characters_is_2_before_any_work(world, name):
    world.freeze()
    assert main([name, f"file:{world.src}", f"file:{world.out}", "caldp-config-local"]) == 2
    assert not world.work.exists() and not world.out.exists()
    world.assert_nothing_outside()


@pytest.mark.fault(
    "a dataset name that only looks valid: acſ_8ph_01, skycell-p٢٣٨١x06y09, j8cb010b0x",
    "exit 2 before any work",
)
@pytest.mark.parametrize(
    "name", ["acſ_8ph_01", "skycell-p٢٣٨١x06y09", "ſkycell-p2381x06y09", "j8cb010b0x"]
)
def test_dataset_name_that_only_looks_valid_is_2_before_any_work(world, name, capsys):
    """Non-ASCII letters that match ASCII ones ignoring case, other scripts' digits, and a
    character too many (an ſ crashed with a KeyError: exit 1)."""
    world.freeze()
    assert main([name, f"file:{world.src}", f"file:{world.out}", "caldp-config-local"]) == 2
    assert "unrecognised dataset name" in capsys.readouterr().err
    assert not world.work.exists() and not world.out.exists()
    world.assert_nothing_outside()


def _poller_with(world: World, first_field: str) -> str:
    ds = "acs_8ph_01"
    synthetic.make_dataset(world.src, ds)
    poller = world.src / f"{ds}_input.out"
    poller.write_text(poller.read_text() + f"{first_field},10265,8PH,01,500.0,F606W,WFC,x\n")
    world.freeze()
    return ds


def test_poller_naming_a_missing_file_outside_is_21(world):
    ds = _poller_with(world, "../../outside/victim_flc.fits")
    assert run(ds, world.src, world.out) == 21
    world.assert_failed(21, "unusable file name", ds)


def test_poller_naming_a_path_to_a_staged_name_is_21(world):
    ds = _poller_with(world, str(world.outside / "j8ph01a1q_flc.fits"))
    assert run(ds, world.src, world.out) == 21
    world.assert_failed(21, "unusable file name", ds)


# ----------------------------------------------------------------------------- env file


def _plant(evil: Path, marker: Path) -> list[str]:
    """A planted calacs.e, sitecustomize.py and (with a C compiler) preload library, each
    writing ``marker`` if it ever runs; returns the env file lines that would use them."""
    evil.mkdir()
    program = evil / "calacs.e"
    program.write_text(f"#!/bin/sh\necho planted calacs.e >> '{marker}'\nexit 0\n")
    program.chmod(0o755)
    (evil / "sitecustomize.py").write_text(
        f"open({str(marker)!r}, 'a').write('planted sitecustomize\\n')\n"
    )
    lines = [
        f"PATH={evil}:/usr/bin:/bin",
        f"PYTHONPATH={evil}",
        f"export PYTHONSTARTUP={evil}/sitecustomize.py",
        f" LD_LIBRARY_PATH = {evil}",
        f"BASH_ENV={evil}/calacs.e",
        f"jref={evil}/",
        "ASTROMETRY_COMPUTE_APOSTERIORI=off",
    ]
    compiler = shutil.which("cc") or shutil.which("gcc")
    library = evil / "libplanted.so"
    if compiler:
        source = evil / "planted.c"
        source.write_text(
            "#include <stdio.h>\n"
            "__attribute__((constructor)) static void planted(void) {\n"
            f'  FILE *f = fopen("{marker}", "a"); if (f) {{ fputs("preload\\n", f); fclose(f); }}\n'
            "}\n"
        )
        built = subprocess.run(
            [compiler, "-shared", "-fPIC", "-o", str(library), str(source)],
            capture_output=True,
            check=False,
        )
        if built.returncode != 0:
            library.unlink(missing_ok=True)
    lines.append(f"LD_PRELOAD={library}")
    return lines


def test_env_file_cannot_change_which_program_runs(world, raw_source, monkeypatch):
    shutil.copy(raw_source, world.src / RAW)
    marker = world.outside / "planted-code-ran"
    lines = _plant(world.tmp / "planted", marker)
    synthetic.make_cal_env(world.src, DS, lines)
    recorded = "PATH,PYTHONPATH,PYTHONSTARTUP,LD_LIBRARY_PATH,LD_PRELOAD,BASH_ENV"
    monkeypatch.setenv("CALDP_STANDIN_RECORD_VARS", recorded + ",ASTROMETRY_COMPUTE_APOSTERIORI")
    for key in recorded.split(",")[1:]:
        monkeypatch.delenv(key, raising=False)
    path_before = os.environ["PATH"]

    assert run(DS, world.src, world.out) == 0

    assert not marker.exists(), marker.read_text()
    ran = records(world.tmp)
    assert [r["program"] for r in ran] == ["calacs.e", "runastrodriz"]  # the stand-ins
    crds_refs = f"{os.environ['CRDS_PATH']}/references/hst/"
    for r in ran:
        env = r["env"]
        assert env["PATH"] == path_before
        assert all(env[k] is None for k in recorded.split(",")[1:]), env
        assert env["jref"] == crds_refs
        assert env["ASTROMETRY_COMPUTE_APOSTERIORI"] == "off"  # allowed lines still apply
    log = (world.out / f"data/acs/{DS}/logs/process.txt").read_text()
    for key in ("PATH", "PYTHONPATH", "PYTHONSTARTUP", "LD_LIBRARY_PATH", "BASH_ENV", "jref"):
        assert f"sets {key}, which caldp does not allow; skipped" in log, key
    assert "sets LD_PRELOAD, which caldp does not allow; skipped" in log
    assert f"data/acs/{DS}/env/{DS}_cal_env.txt" in tree(world.out)


@pytest.mark.fault(
    "an env file with a NUL byte or a 300 kB value",
    "exit 21 at fetch naming the line; no program runs",
)
@pytest.mark.parametrize(
    "line, words",
    [
        ("BAD=before\0after", "line 2 holds a NUL byte"),
        (f"BIG={'x' * 300_000}", "line 2 sets BIG to 300004 bytes"),
    ],
    ids=["nul-byte", "300-kB-value"],
)
def test_env_file_no_program_could_start_with_is_21_at_fetch(world, raw_source, line, words):
    """Refused when the inputs are fetched, naming the line, before any program runs
    (a program given such an environment cannot start: that was a stage-1 failure, 23)."""
    shutil.copy(raw_source, world.src / RAW)
    synthetic.make_cal_env(world.src, DS, ["ASTROMETRY_COMPUTE_APOSTERIORI=off", line])
    world.freeze()
    assert run(DS, world.src, world.out) == 21
    world.assert_failed(21, f"step fetch failed: {DS}_cal_env.txt {words}")
    assert records(world.tmp) == []
    assert not (world.work / DS / "env").exists()  # refused before it was copied

"""The fault matrix: each step of caldp-process under each fault that can happen there.

Rows are the steps (``fetch`` from a folder, ``tarball`` = fetch from a
tarball, ``bestrefs``, ``stage1`` with its SVM and MVM variants, ``stage2``,
``previews``, ``delivery``, ``messages``, and ``output check``, the check of the
output location before any work).  Columns are the fault kinds.  Every case
checks the same promises:

* the documented exit code;
* an ``error-<ds>`` message, the only state file of the dataset (where one can
  be written at all, see below);
* complete logs: the log's last line is the final result, and the cause (the
  step's error line with its exit code, and the fault's own words) is among the
  last records;
* the user's inputs unchanged (sha256 of every file before and after);
* nothing half-written that looks finished: no ``processed-`` trigger, no
  hidden ``.partial-``/``.old-``/``.tmp`` leftovers in the output, after a
  calibration failure only the inputs tarball (``<ds>_inputs.tar.gz``) beside
  the logs, and no half-extracted tarball member in the working folder.

How the faults are made:

* where: every fault is placed by the name of the step caldp/pipeline.py runs
  (``fetch``, ``version keywords``, ``bestrefs``, ``stage1``, ``stage2``,
  ``previews``, ``deliver``, ``messages``, ``check output``), before it, at its
  start, after it, or at a call of a public caldp function inside it
  (:mod:`tests.support.injection`); a place the run never reaches is an error, so
  that renaming a step or a function cannot drop a case;
* exception, caldp MemoryError, caldp ``Cannot allocate memory``: raised in-process
  (pytest ``monkeypatch``) there: ``RuntimeError``, ``MemoryError`` or
  ``OSError(ENOMEM)`` -- for stage 2 the ENOMEM is a failing fork
  (``subprocess.Popen`` raising it, as the kernel does when it cannot fork a
  large process);
* program exit code, killed by a signal, MemoryError / ``Cannot allocate
  memory`` in a program's output: the stand-in programs
  (``CALDP_STANDIN_FAIL``, ``_SIGNAL``, ``_MEMORYERROR``, ``_ENOMEM``);
* SIGTERM: a real ``caldp-process`` subprocess receives a real SIGTERM once the
  step has begun (the stand-in hangs, or the step's function first waits).  The
  rows ``between steps`` (before the third step begins), ``before message``
  (products delivered, final message not yet begun) and ``after message``
  (removing the working folder) widen those windows the same way: a delay
  injected at that point, then the SIGTERM;
* disk full: a real ENOSPC from a size-limited tmpfs where this machine lets
  the test mount one, else an ``OSError(ENOSPC)`` raised by the write (the
  summary under the matrix says which);
* unwritable: a read-only tmpfs (EROFS) where mounting is allowed, else a
  folder without write permission (EACCES), else a file where a folder must go.
* bad input: the inputs themselves -- from a folder, a raw ``.fits.gz`` that
  unpacks past ``CALDP_MAX_TAR_BYTES``; from a tarball, one byte of a raw
  member flipped under the gzip CRC of the original bytes.

Absent pairs are listed in :data:`ABSENT` with the reason.  A SIGTERM before
the final message is begun ends with 143 and ``error-``, wherever it comes.
Some cells do not end in ``error-``: a SIGTERM once the final message is being
written or after it changes nothing (exit 0, ``processed-``), and when the message box itself
fails (``messages`` row) or the output location is unusable from the start
(``output check`` row) there can be no final message: those cases assert what
the code promises there -- the exit code, no ``processed-`` trigger, and the
complete log in the working folder ``$CALDP_HOME/caldp-work/<ds>/logs``.

The matrix is printed in the terminal summary (``tests/support/fault_report.py``).
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from caldp.instruments import HANDLERS
from tests.support import synthetic, tarballs
from tests.support.disks import Mounts, fill
from tests.support.fault_report import MATRIX
from tests.support.injection import BETWEEN, At, Injector, resolve
from tests.support.pipeline_helpers import hashes, make_tarball, messages, records, run, tree

ROWS = [
    "fetch",
    "tarball",
    "between steps",
    "headers",
    "bestrefs",
    "stage1",
    "stage1 SVM",
    "stage1 MVM",
    "stage2",
    "previews",
    "delivery",
    "before message",
    "messages",
    "after message",
    "output check",
]
COLUMNS = [
    "exception",
    "exit code",
    "signal",
    "prog MemErr",
    "MemoryError",
    "ENOMEM",
    "SIGTERM",
    "disk full",
    "unwritable",
    "bad input",
]
PROGRAM_FAULTS = ("exit code", "signal", "prog MemErr")
NO_PROGRAM = "no calibration program runs in this step"
OUTPUT_ONLY = (
    "unwritable is a fault of the output location (delivery, messages, output check); disk "
    "full is the working disk filling up in the steps that write to it (fetch, headers, "
    "stage 1 and 2, previews) and the output's in the others; bestrefs writes nothing there"
)
HEADERS_ONLY = (
    "the version keywords step rewrites the staged copies: its other faults are the fetch "
    "row's code path (21); a disk that fills up as it writes is its own"
)
ABSENT: dict[tuple[str, str], str] = {
    **{(r, c): NO_PROGRAM for r in ROWS for c in PROGRAM_FAULTS},
    **{(r, c): OUTPUT_ONLY for r in ROWS for c in ("disk full", "unwritable")},
    **{("headers", c): HEADERS_ONLY for c in COLUMNS},
}
for _row in ("fetch", "headers", "stage1", "stage2", "previews"):
    del ABSENT[(_row, "disk full")]
for _row in ("stage1", "stage1 SVM", "stage1 MVM", "stage2"):
    for _column in PROGRAM_FAULTS:
        del ABSENT[(_row, _column)]
for _row in ("delivery", "messages", "output check"):
    del ABSENT[(_row, "disk full")], ABSENT[(_row, "unwritable")]
del ABSENT[("tarball", "disk full")]  # the extraction's free-space check
ABSENT.update(
    {
        (r, c): "the SVM/MVM rows only add the mosaic programs' own failures (40/41) "
        "to the stage1 row; caldp-side faults are the same code path"
        for r in ("stage1 SVM", "stage1 MVM")
        for c in ("exception", "MemoryError", "ENOMEM")
    }
)
ABSENT[("stage1 MVM", "SIGTERM")] = "same code path as stage1 SVM (a hanging stand-in)"
ABSENT.update(
    {
        (r, "bad input"): "inputs are read in the fetch step only (a dataset name that is "
        "not valid is refused before any step, exit 2)"
        for r in ROWS
        if r not in ("fetch", "tarball", "headers")
    }
)
ABSENT.update(
    {
        ("output check", c): "nothing runs before the check but the check itself; "
        "its faults are the exception, disk full and unwritable cells"
        for c in ("MemoryError", "ENOMEM", "SIGTERM")
    }
)
WINDOWS = ("between steps", "before message", "after message")
ABSENT.update(
    {
        (r, c): "a window between caldp's own actions: only a signal arrives there"
        for r in WINDOWS
        for c in COLUMNS
        if c != "SIGTERM"
    }
)
MATRIX.layout(ROWS, COLUMNS)
MATRIX.absent.update(ABSENT)
MATRIX.note(
    "SIGTERM = 143 until the final message is begun (a delivery it interrupts or that came "
    "before it is made again for 143); from then on (messages, after message) the outcome stands"
)
MATRIX.note(
    "messages and output check rows: no final message can be written; exit code, no "
    "processed- trigger, full log in caldp-work/<ds>/logs"
)

DATASETS = {
    # row -> (dataset, instrument folder, input kind)
    "stage1 SVM": ("acs_8ph_01", "svm", "folder"),
    "stage1 MVM": ("skycell-p2381x06y09", "mvm", "folder"),
    "tarball": ("j8cb010b0", "acs", "tarball"),
}
DEFAULT_DATASET = ("j8cb01u1q", "acs", "folder")
LAST_RECORDS = 15
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")


# ----------------------------------------------------------------------------- environment


@dataclass
class Ctx:
    tmp: Path
    src: Path
    out: Path
    home: Path
    dataset: str
    instrument: str
    monkeypatch: pytest.MonkeyPatch
    mounts: Mounts
    before: dict[str, str] = field(default_factory=dict)
    undo: list[Callable[[], None]] = field(default_factory=list)
    injectors: list[Injector] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.home / "caldp-work" / self.dataset


@pytest.fixture(scope="session")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Synthetic inputs, made once: a folder per dataset, the ACS association as a tarball."""
    base = tmp_path_factory.mktemp("fault-sources")
    made = {}
    for ds, _, kind in [DEFAULT_DATASET, *DATASETS.values()]:
        folder = base / ds
        if kind == "tarball":
            files = synthetic.make_dataset(base / f"{ds}-files", ds)
            folder.mkdir()
            make_tarball(folder, f"{ds}.tar.gz", files)
        else:
            synthetic.make_dataset(folder, ds)
        made[ds] = folder
    return made


# ----------------------------------------------------------------------------- faults


def at(ctx: Ctx, place: At, action: Callable[[], None], *, every: bool = False) -> None:
    """Run ``action`` at ``place`` during the run (``every``: at each later call too, a
    fault that stays); the test fails if the run never gets there."""
    ctx.injectors.append(Injector(place, action, every=every).install(ctx.monkeypatch.setattr))


def inject(ctx: Ctx, place: At, make: Callable[[], BaseException]) -> None:
    """Raise ``make()`` at ``place`` (and at each later call there)."""

    def fault() -> None:
        raise make()

    at(ctx, place, fault, every=True)


def raising(kind: str, where: str) -> Callable[[Ctx, str, int], None]:
    makers = {
        "exception": lambda: RuntimeError(f"injected RuntimeError in {where}"),
        "MemoryError": lambda: MemoryError(f"injected MemoryError in {where}"),
        "ENOMEM": lambda: OSError(errno.ENOMEM, "Cannot allocate memory (injected)"),
    }

    def setup(ctx: Ctx, place: At) -> None:
        inject(ctx, place, makers[kind])

    return setup


def standin(**env: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        for key, value in env.items():
            ctx.monkeypatch.setenv(f"CALDP_STANDIN_{key}", value)

    return setup


def fork_fails(program: str) -> Callable[[Ctx], None]:
    """``subprocess.Popen`` fails with ENOMEM for ``program`` (a fork the kernel refuses)."""

    def setup(ctx: Ctx) -> None:
        import caldp.runner

        real = caldp.runner.subprocess.Popen

        def popen(argv, *args, **kwargs):
            if Path(str(argv[0])).name == program:
                raise OSError(errno.ENOMEM, "Cannot allocate memory")
            return real(argv, *args, **kwargs)

        ctx.monkeypatch.setattr(caldp.runner.subprocess, "Popen", popen)

    return setup


def _enospc(ctx: Ctx, place: At) -> None:
    MATRIX.note("disk full: OSError(ENOSPC) injected at the write (no tmpfs mount here)")
    inject(ctx, place, lambda: OSError(errno.ENOSPC, "No space left on device"))


def delivery_disk_full(ctx: Ctx) -> None:
    """The output file system has room for the messages, not for the products."""
    if Mounts.allowed():
        MATRIX.note("disk full: real ENOSPC from a size-limited tmpfs")
        ctx.mounts.tmpfs(ctx.out, "64k")
    else:
        _enospc(ctx, MID_DELIVERY)


def messages_disk_full(ctx: Ctx) -> None:
    """The output file system fills up right after the products were delivered."""
    if Mounts.allowed():
        MATRIX.note("disk full: real ENOSPC from a size-limited tmpfs")
        ctx.mounts.tmpfs(ctx.out, "4m")
        at(ctx, DELIVERED, lambda: fill(ctx.out))
    else:
        _enospc(ctx, TARGETS["messages"][0])


def check_disk_full(ctx: Ctx) -> None:
    """The output file system is full from the start."""
    if not Mounts.allowed():
        pytest.skip("needs a size-limited file system (tmpfs mount, as root)")
    MATRIX.note("disk full: real ENOSPC from a size-limited tmpfs")
    ctx.mounts.tmpfs(ctx.out, "16k")
    fill(ctx.out)


def make_unwritable(ctx: Ctx, folder: Path, *, mounted: bool) -> str:
    """Make ``folder`` unwritable; returns how.  ``mounted``: a tmpfs is already there."""
    if mounted:
        Mounts.readonly(folder)
        return "unwritable: read-only tmpfs (EROFS)"
    if os.geteuid() != 0:
        folder.chmod(0o555)
        ctx.undo.append(lambda: folder.chmod(0o755))
        return "unwritable: folder without write permission (EACCES)"
    shutil.rmtree(folder, ignore_errors=True)
    folder.write_text("a file where a folder must go\n")
    return "unwritable: a file where the folder must go (ENOTDIR/EEXIST)"


def _prepare_folder(ctx: Ctx, folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if Mounts.allowed():
        ctx.mounts.tmpfs(folder, "8m")
        return True
    return False


def delivery_unwritable(ctx: Ctx) -> None:
    """``DIR/data`` cannot be written (the messages folder can)."""
    data = ctx.out / "data"
    MATRIX.note(make_unwritable(ctx, data, mounted=_prepare_folder(ctx, data)))


def messages_unwritable(ctx: Ctx) -> None:
    """``DIR/messages`` becomes unwritable after the products were delivered."""
    folder = ctx.out / "messages"
    mounted = _prepare_folder(ctx, folder)
    if not mounted and os.geteuid() == 0:
        pytest.skip("root without mounts: no way to make a folder unwritable")
    at(ctx, DELIVERED, lambda: MATRIX.note(make_unwritable(ctx, folder, mounted=mounted)))


def tarball_disk_full(ctx: Ctx) -> None:
    """The working folder is on a file system too small for the members (plus the margin
    extraction keeps free); the logs still fit."""
    if not Mounts.allowed():
        pytest.skip("needs a size-limited file system (tmpfs mount, as root)")
    MATRIX.note("disk full: real ENOSPC from a size-limited tmpfs")
    ctx.mounts.tmpfs(ctx.home, "32m")


def work_disk_full(place: At) -> Callable[[Ctx], None]:
    """``$CALDP_HOME`` is a small file system that fills up as the step begins (the
    step's own writes then fail with ENOSPC)."""

    def setup(ctx: Ctx) -> None:
        if not Mounts.allowed():
            pytest.skip("needs a size-limited file system (tmpfs mount, as root)")
        MATRIX.note("disk full: real ENOSPC from a size-limited tmpfs")
        ctx.mounts.tmpfs(ctx.home, "32m")
        at(ctx, place, lambda: fill(ctx.home))

    return setup


def check_unwritable(ctx: Ctx) -> None:
    """The output folder cannot be written at all."""
    MATRIX.note(make_unwritable(ctx, ctx.out, mounted=_prepare_folder(ctx, ctx.out)))


# ----------------------------------------------------------------------------- the cases


def fits_gz_bomb(ctx: Ctx) -> None:
    """The raw as a .fits.gz that unpacks to 64 MiB, against a 16 MiB byte limit."""
    ctx.monkeypatch.setenv("CALDP_MAX_TAR_BYTES", str(16 * 2**20))
    raw = ctx.src / f"{ctx.dataset}_raw.fits"
    with gzip.open(raw.with_name(f"{raw.name}.gz"), "wb") as f:
        f.write(raw.read_bytes())
        for _ in range(64):
            f.write(bytes(2**20))
    raw.unlink()
    ctx.before = hashes(ctx.src)


def corrupt_tarball(ctx: Ctx) -> None:
    """One byte of a raw member flipped near its end (in its data), the gzip CRC kept."""
    path = ctx.src / f"{ctx.dataset}.tar.gz"
    with tarfile.open(path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    index = next(i for i, (name, _) in enumerate(members) if name.endswith("_raw.fits"))
    path.write_bytes(tarballs.flipped_byte(members, index, len(members[index][1]) - 100))
    ctx.before = hashes(ctx.src)


@dataclass(frozen=True)
class Case:
    row: str
    column: str
    code: int
    words: tuple[str, ...]  # all among the last records of the log
    outcome: str = "inputs"  # inputs | products | undelivered | no message | ignored
    setup: Callable[[Ctx], None] | None = None
    sigterm: At | str | None = None  # where caldp-process pauses, or the stand-in that hangs

    @property
    def id(self) -> str:
        return f"{self.row}-{self.column}".replace(" ", "_")


def _in(kind: str, where: str, place: At) -> Callable[[Ctx], None]:
    make = raising(kind, where)
    return lambda ctx: make(ctx, place)


INJECTED = {
    "exception": "injected RuntimeError",
    "MemoryError": "MemoryError",
    "ENOMEM": "Cannot allocate memory",
}
CODES = {"MemoryError": 32, "ENOMEM": 34}
TERMINATED = 143
RECORDED_ONLY = ("before message", "messages", "after message")  # SIGTERM raises nothing
STAGED = At("fetch", "call", "caldp.inputs:stage")  # the fetched files are being staged
MID_DELIVERY = At("deliver", "call", "caldp.storage:DeliveryPlan.final_logs")  # products placed
DELIVERED = At("deliver", "after")  # the delivery is done, the final message not yet begun
TARGETS = {
    # row -> (place, code of the step, outcome when the fault is the step's own)
    "fetch": (STAGED, 21, "inputs"),
    # the second member: the first one is written and must go
    "tarball": (At("fetch", "call", "caldp.storage.tarball:check_member", nth=2), 21, "inputs"),
    "bestrefs": (At("bestrefs", "call", "caldp.bestrefs:run"), 27, "inputs"),
    "stage1": (At("stage1", "call", "caldp.runner:run"), 23, "inputs"),
    "stage2": (At("stage2", "call", "caldp.runner:run"), 24, "inputs"),
    "previews": (At("previews", "call", "caldp.previews:make_previews"), 28, "products"),
    "delivery": (MID_DELIVERY, 25, "undelivered"),
    "messages": (At("messages"), 25, "no message"),  # the step writes the final message only
}
MEMORY_OUTCOME = {  # a memory error is never 28 or 25: what the run then delivers
    "previews": "inputs",
    "delivery": "undelivered",
    "messages": "no message",
}


def _cases() -> list[Case]:
    cases = []
    for row, (place, code, outcome) in TARGETS.items():
        for kind in ("exception", "MemoryError", "ENOMEM"):
            if row in ("stage1", "stage2") and kind == "ENOMEM":
                continue  # the program's own words, a failing fork: below
            cases.append(
                Case(
                    row,
                    kind,
                    CODES.get(kind, code),
                    (INJECTED[kind],),
                    outcome if kind == "exception" else MEMORY_OUTCOME.get(row, outcome),
                    _in(kind, row, place),
                )
            )
    paused = {row: TARGETS[row][0] for row in ("fetch", "tarball", "bestrefs", "previews")}
    paused.update(
        {
            "between steps": At("fetch", "before"),  # the third step, once two are done
            "delivery": At("deliver", "call", "caldp.storage.file:FileOutput.deliver"),
            # the products delivered, the outcome not yet decided
            "before message": At(BETWEEN, "call", "caldp.pipeline:Sigterm.commit"),
        }
    )
    for row, place in paused.items():  # not the step's failure: 143, the inputs delivered
        cases.append(Case(row, "SIGTERM", TERMINATED, ("terminated by SIGTERM",), sigterm=place))
    for row, program, code in (
        ("stage1", "calacs.e", 23),
        ("stage2", "runastrodriz", 24),
        ("stage1 SVM", "runsinglehap", 40),
        ("stage1 MVM", "runmultihap", 41),
    ):
        only = {"ONLY": program}
        sig = "SEGV" if row == "stage2" else "KILL"
        fail = "2" if row == "stage1 MVM" else "5"  # 5 is a success for calcos only
        cases += [
            Case(
                row,
                "exit code",
                code,
                (f"{program} exited {fail}",),
                setup=standin(FAIL=fail, **only),
            ),
            Case(
                row,
                "signal",
                code,
                (f"{program} killed by SIG{sig}",),
                setup=standin(SIGNAL=sig, **only),
            ),
            Case(
                row,
                "prog MemErr",
                31,
                (f"{program} exited 1", "MemoryError"),
                setup=standin(MEMORYERROR="1", **only),
            ),
        ]
        if row != "stage1 MVM":
            cases.append(
                Case(
                    row,
                    "SIGTERM",
                    TERMINATED,
                    ("terminated by SIGTERM",),
                    sigterm=program,
                )
            )
    cases += [
        Case(
            "stage1",
            "ENOMEM",
            34,
            ("calacs.e exited 1", "Cannot allocate memory"),
            setup=standin(ENOMEM="1", ONLY="calacs.e"),
        ),
        Case("stage2", "ENOMEM", 34, ("Cannot allocate memory",), setup=fork_fails("runastrodriz")),
        Case("tarball", "disk full", 21, ("does not fit",), setup=tarball_disk_full),
        Case(
            "fetch",
            "disk full",
            21,
            ("No space left on device",),
            setup=work_disk_full(STAGED),
        ),
        Case(
            "headers",
            "disk full",
            21,
            ("No space left on device",),
            setup=work_disk_full(At("version keywords", "call", "caldp.headers:update_primary")),
        ),
        Case(
            "stage1",
            "disk full",
            23,
            ("calacs.e exited", "No space left on device"),
            setup=work_disk_full(TARGETS["stage1"][0]),
        ),
        Case(
            "stage2",
            "disk full",
            24,
            ("runastrodriz exited", "space"),  # astropy: "Not enough space on disk"
            setup=work_disk_full(TARGETS["stage2"][0]),
        ),
        Case(
            "previews",
            "disk full",
            28,
            ("No space left on device",),
            "products",
            work_disk_full(TARGETS["previews"][0]),
        ),
        Case(  # the final message is being written: the outcome stands
            "messages",
            "SIGTERM",
            0,
            (),
            "ignored",
            sigterm=TARGETS["messages"][0],
        ),
        Case(  # the final message written
            "after message", "SIGTERM", 0, (), "ignored", sigterm=At("messages", "after")
        ),
        Case(
            "delivery",
            "disk full",
            25,
            ("No space left on device",),
            "undelivered",
            delivery_disk_full,
        ),
        Case(
            "messages",
            "disk full",
            25,
            ("No space left on device",),
            "no message",
            messages_disk_full,
        ),
        Case(
            "output check",
            "disk full",
            25,
            ("No space left on device",),
            "no message",
            check_disk_full,
        ),
        Case(
            "delivery",
            "unwritable",
            25,
            ("step deliver failed",),
            "undelivered",
            delivery_unwritable,
        ),
        Case(
            "messages",
            "unwritable",
            25,
            ("step messages failed",),
            "no message",
            messages_unwritable,
        ),
        Case(
            "output check", "unwritable", 25, ("is not writable",), "no message", check_unwritable
        ),
        Case(
            "output check",
            "exception",
            25,
            ("injected RuntimeError",),
            "no message",
            _in(
                "exception",
                "output check",
                At("check output", "call", "caldp.storage.file:FileOutput.check"),
            ),
        ),
    ]
    cases += [
        Case("fetch", "bad input", 21, ("byte limit", "once decompressed"), setup=fits_gz_bomb),
        Case("tarball", "bad input", 21, ("CRC check failed",), setup=corrupt_tarball),
    ]
    return cases


CASES = _cases()


def test_the_matrix_is_complete():
    """Every (step, fault) is either a case or absent with a reason, never both."""
    cases = {(c.row, c.column) for c in CASES}
    assert len(cases) == len(CASES), "a cell is tested twice"
    assert not cases & set(ABSENT), sorted(cases & set(ABSENT))
    every = {(r, c) for r in ROWS for c in COLUMNS}
    assert cases | set(ABSENT) == every, sorted(every - cases - set(ABSENT))


def test_every_place_names_a_step_of_the_pipeline():
    """The places of the matrix, checked before any run: steps the pipeline brackets,
    public functions that exist."""
    import inspect

    from caldp import pipeline

    source = inspect.getsource(pipeline) + "".join(
        f'"{s.name}"' for h in HANDLERS.values() for s in h.stages
    )
    places = [TARGETS[row][0] for row in TARGETS]
    places += [c.sigterm for c in CASES if isinstance(c.sigterm, At)]
    for place in places:
        if place.step != BETWEEN:
            assert f'"{place.step}"' in source, f"{place}: no such step in caldp/pipeline.py"
        if place.function:
            resolve(place.function)  # raises if it is gone or private


def test_a_place_that_is_never_reached_is_an_error(pipeline_env, sources, monkeypatch):
    """A renamed step, or a function no longer called in its step, cannot drop a case."""
    with pytest.raises(ValueError, match="public functions only"):
        resolve("caldp.storage.file:_place")
    with pytest.raises(AttributeError):
        resolve("caldp.inputs:no_such_function")
    src = pipeline_env / "src"
    shutil.copytree(sources[DEFAULT_DATASET[0]], src)
    renamed = Injector(At("stage 1"), lambda: None).install(monkeypatch.setattr)
    elsewhere = Injector(At("bestrefs", "call", "caldp.inputs:stage"), lambda: None)
    elsewhere.install(monkeypatch.setattr)
    reached = Injector(At("stage1", "call", "caldp.runner:run"), lambda: None)
    reached.install(monkeypatch.setattr)
    assert run(DEFAULT_DATASET[0], src, pipeline_env / "out") == 0
    reached.check()
    for injector in (renamed, elsewhere):
        with pytest.raises(AssertionError, match="was never injected"):
            injector.check()


# ----------------------------------------------------------------------------- running


def _argv(ctx: Ctx) -> list[str]:
    return [ctx.dataset, f"file:{ctx.src}", f"file:{ctx.out}", "caldp-config-local"]


def run_with_sigterm(ctx: Ctx, case: Case) -> int:
    """Run caldp-process as a subprocess and send it SIGTERM once the step has begun."""
    what = case.sigterm
    marker = ctx.tmp / "in-step"
    if isinstance(what, At):
        # where SIGTERM interrupts, the delay is cut short; elsewhere it is only recorded
        pause = "3" if case.row in RECORDED_ONLY else "120"
        argv = [sys.executable, "-m", "tests.support.injection", what.spec(), str(marker), pause]
        argv += _argv(ctx)
        env = dict(os.environ)

        def begun() -> bool:
            return marker.exists()
    else:
        argv = [sys.executable, "-m", "caldp", *_argv(ctx)]
        env = dict(os.environ, CALDP_STANDIN_HANG="1", CALDP_STANDIN_ONLY=what)

        def begun() -> bool:
            return any(r["program"] == what for r in records(ctx.tmp))

    proc = subprocess.Popen(  # noqa: S603
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while not begun():
            assert proc.poll() is None, f"caldp ended before the step: {proc.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "the step never began"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if isinstance(what, str):
        for r in records(ctx.tmp):
            if r["program"] == what and r.get("pid"):
                with pytest.raises(ProcessLookupError):
                    os.kill(r["pid"], 0)  # the program was stopped too
    return proc.returncode


def log_records(text: str) -> list[str]:
    """Log records (a record is a timestamped line and its continuation lines)."""
    out: list[str] = []
    for line in text.splitlines():
        if RECORD_START.match(line) or not out:
            out.append(line)
        else:
            out[-1] += "\n" + line
    return out


def assert_cause_at_end(text: str, code: int, words: tuple[str, ...], last: str) -> None:
    recs = log_records(text)
    assert last in recs[-1], recs[-1]
    tail = "\n".join(recs[-LAST_RECORDS:])
    assert re.search(rf"-> exit {code} [A-Z0-9_]+$", tail, re.MULTILINE), tail
    for w in words:
        assert w in tail, f"{w!r} not in the last {LAST_RECORDS} log records:\n{tail}"


def leftovers(out: Path) -> list[str]:
    """Hidden partial/old/tmp files or folders anywhere in the output tree."""
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*"))


def check_promises(ctx: Ctx, case: Case, code: int) -> None:
    ds, out = ctx.dataset, ctx.out
    work_log = ctx.work / "logs" / "process.txt"
    assert code == case.code, (
        work_log.read_text()[-3000:] if work_log.exists() else "no working log"
    )
    assert hashes(ctx.src) == ctx.before, "the user's inputs changed"
    left = leftovers(out)
    if (case.row, case.column) == ("messages", "unwritable"):
        # the folder went read-only under the run: its lock file (unlocked) cannot go;
        # the next run takes it and removes it
        left = [p for p in left if p != f"messages/.{ctx.dataset}.lock"]
    assert not left, left
    state = [m for m in messages(out) if not m.startswith(".")]  # the state files
    base = out / "data" / ctx.instrument / ds

    if case.outcome == "ignored":
        assert state == [f"processed-{ds}.trigger"]
        recs = log_records((base / "logs" / "process.txt").read_text())
        assert "result: exit 0 SUCCESS" in recs[-1]
        return

    assert f"processed-{ds}.trigger" not in state
    work_text = work_log.read_text()
    assert_cause_at_end(work_text, code, case.words, f"caldp-process {ds} exit {code} ")
    if case.row == "tarball":
        download = ctx.work / "download"
        assert not [p for p in download.rglob("*") if p.is_file()], "half-extracted members"

    if case.outcome in ("inputs", "products"):
        assert state == [f"error-{ds}"]
        text = (base / "logs" / "process.txt").read_text()
        assert_cause_at_end(text, code, case.words, f"result: exit {code} ")
        metrics = (base / "logs" / "process_metrics.txt").read_text().splitlines()
        assert metrics[-1] == f"\tExit status: {code}"
        assert json.loads((base / "logs" / "metrics.json").read_text())["exit_code"] == code
        message = (out / "messages" / f"error-{ds}").read_text().splitlines()
        assert message[0] == f"error-{ds}"
        assert set(message[1:]) == set(tree(out)) - {f"messages/error-{ds}"}
        data = sorted(p.name for p in base.iterdir() if p.is_file())
        if case.outcome == "inputs":
            assert all(n == f"{ds}_inputs.tar.gz" for n in data), data
            assert not (base / "previews").exists()
        else:
            assert f"{ds}_flt.fits" in data and f"{ds}_drz.fits" in data, data
            assert f"{ds}_inputs.tar.gz" not in data
    elif case.outcome == "undelivered":
        assert state == [f"error-{ds}"]
        assert (out / "messages" / f"error-{ds}").read_text() == f"error-{ds}\n"
        assert not base.exists() or not any(base.iterdir())
    elif case.outcome == "no message":
        # the message box itself failed (processing- stays: the run did not finish), or
        # the output was unusable from the start (no state file at all)
        assert state == ([f"processing-{ds}"] if case.row == "messages" else [])
    else:
        raise AssertionError(f"unknown outcome {case.outcome}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, pipeline_env, sources, monkeypatch, mounts):
    tmp = pipeline_env
    dataset, instrument, _ = DATASETS.get(case.row, DEFAULT_DATASET)
    ctx = Ctx(
        tmp=tmp,
        src=tmp / "src",
        out=tmp / "out",
        home=Path(os.environ["CALDP_HOME"]),
        dataset=dataset,
        instrument=instrument,
        monkeypatch=monkeypatch,
        mounts=mounts,
    )
    shutil.copytree(sources[dataset], ctx.src)
    ctx.before = hashes(ctx.src)
    if case.setup is not None:
        case.setup(ctx)
    cell = MATRIX.start(case.row, case.column, case.code)
    code = run_with_sigterm(ctx, case) if case.sigterm else run(dataset, ctx.src, ctx.out)
    cell.got = code
    try:
        for injector in ctx.injectors:
            injector.check()
        check_promises(ctx, case, code)
    finally:
        for undo in ctx.undo:
            undo()
    cell.held = True

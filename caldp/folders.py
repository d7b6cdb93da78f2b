"""The folders a run writes, removes or replaces, kept apart from the user's.

A run touches three places on disk:

* the working folder ``$CALDP_HOME/caldp-work/<ds>`` (else under the current
  folder): replaced at the start of a run, removed after a delivered success;
* the output folder ``DIR`` of ``file:DIR``: ``DIR/messages/`` is written, and
  the dataset's folder ``DIR/data/<instrument>/<ds>`` is replaced by each
  delivery;
* for ``s3://`` outputs, the objects under the output prefix.

Before anything is touched, :func:`check_apart` refuses (exit 2) inputs and
outputs that overlap these: an input inside the working folder or inside the
dataset's delivered folder, an output inside or equal to the input folder or
inside the working folder, a working folder inside the delivered folder, and S3
input and output prefixes inside one another.  The input folder itself may
contain the working folder or the output folder: caldp reads only the files at
its top level.

The working folder carries a marker file, so that a folder caldp did not make
is never removed in its place, and a reserve file of :data:`RESERVE_BYTES`
(:func:`release_reserve`): when a step fills the working disk, releasing it
leaves room for the failure's log lines, metrics and delivery.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from caldp.datasets import Dataset
from caldp.storage import Uri

WORK_MARKER = ".caldp-work"  # in every working folder caldp makes
RESERVE = ".caldp-reserve"
RESERVE_BYTES = 8 * 2**20


class FoldersError(ValueError):
    """Input, output and working folders that overlap (a command-line error, exit 2)."""


def work_dir(dataset: Dataset, home: str = "") -> Path:
    """``HOME/caldp-work/<ds>``: ``home`` is ``$CALDP_HOME``, by default the current folder."""
    base = Path(home or os.getcwd()).expanduser()
    return base / "caldp-work" / dataset.name


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def input_folder(uri: Uri) -> Path | None:
    """The local folder an input reads, if any (``file:DIR``, ``astroquery:DIR``)."""
    if uri.scheme == "file" or (
        uri.scheme == "astroquery" and uri.location and not uri.location.startswith("s3://")
    ):
        return _real(uri.location)
    return None


def _key_folder(uri: Uri) -> str:
    return f"{uri.prefix}/" if uri.prefix else ""


def check_apart(dataset: Dataset, input_uri: Uri, output_uri: Uri, work: Path) -> None:
    """Raise :class:`FoldersError` if the input, the output and the working folder overlap."""
    work = _real(work)
    source = input_folder(input_uri)
    problems: list[str] = []
    if source is not None and _within(source, work):
        problems.append(
            f"the input folder {source} is inside the working folder {work}, "
            "which every run replaces: copy the files elsewhere and use that folder"
        )
    if output_uri.scheme == "file":
        from caldp.storage.file import dataset_dir

        root = _real(output_uri.location)
        delivered = _real(dataset_dir(root, dataset))
        if source is not None and _within(root, source):
            problems.append(
                f"the output folder {root} is "
                f"{'the input folder' if root == source else 'inside the input folder ' + str(source)}"
                ": give an output folder outside the inputs (input and output may be swapped)"
            )
        elif source is not None and _within(source, delivered):
            problems.append(
                f"the input folder {source} is inside {delivered}, which the delivery replaces: "
                "copy the files elsewhere and use that folder"
            )
        if _within(root, work):
            problems.append(
                f"the output folder {root} is inside the working folder {work}, "
                "which is removed after a success"
            )
        if _within(work, delivered):
            problems.append(
                f"the working folder {work} (from CALDP_HOME) is inside {delivered}, "
                "which the delivery replaces"
            )
    if input_uri.scheme == "s3" and output_uri.scheme == "s3":
        a, b = _key_folder(input_uri), _key_folder(output_uri)
        if input_uri.bucket == output_uri.bucket and (a.startswith(b) or b.startswith(a)):
            problems.append(
                f"the input {input_uri} and the output {output_uri} overlap: "
                "the delivery would write over the inputs"
            )
    if problems:
        raise FoldersError("; ".join(problems))


def prepare_work_dir(work: Path) -> Path:
    """A fresh working folder (a previous run's is replaced, but only one caldp made)."""
    if work.exists():
        if not (work / WORK_MARKER).is_file():
            raise FoldersError(
                f"{work} exists but was not made by caldp (no {WORK_MARKER} in it): "
                "move it away, or set CALDP_HOME to another folder"
            )
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / WORK_MARKER).write_text("a caldp working folder: removed by the next run\n")
    (work / "logs").mkdir()
    _reserve(work / RESERVE, RESERVE_BYTES)
    return work


def _reserve(path: Path, size: int) -> None:
    """Allocate ``size`` bytes of disk in ``path`` (real blocks, not a sparse file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError:  # no room even for this, or a file system without fallocate
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def release_reserve(work: Path) -> None:
    """Free the reserve of :func:`prepare_work_dir` (a step failed, perhaps for a full disk)."""
    (work / RESERVE).unlink(missing_ok=True)


def remove_work_dir(work: Path) -> None:
    """Remove a working folder caldp made, and ``caldp-work/`` when that leaves it empty."""
    if not (work / WORK_MARKER).is_file():
        return
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.parent.rmdir()  # only when empty: other datasets may be running beside it
    except OSError:
        pass

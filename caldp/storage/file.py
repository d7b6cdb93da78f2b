"""``file:`` inputs and outputs.

Input: a folder holding the raw files, or exactly one ``<ds>*.tar.gz`` holding
them.  Output: the browsable tree of docs/interface.rst, replaced atomically per
dataset, and the state files under ``messages/``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tarfile
import uuid
from pathlib import Path

from caldp import locks
from caldp.datasets import Dataset
from caldp.errors import OutputError
from caldp.settings import Settings
from caldp.storage import Delivered, DeliveryPlan, Uri
from caldp.storage.messages import MessageBox, NullMessageBox
from caldp.storage.tarball import TarballError, byte_limit, extract_file

log = logging.getLogger("caldp.storage.file")


def find_tarballs(folder: Path, dataset: Dataset) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.name.startswith(dataset.name) and p.name.endswith(".tar.gz") and p.is_file()
    )


def fetch(location: str, dataset: Dataset, dest: Path, settings: Settings) -> list[Path]:
    """Candidate input files: the folder's files, or the contents of its one tarball."""
    folder = Path(location).expanduser()
    if not folder.is_dir():
        raise TarballError(f"input folder {folder} does not exist or is not a folder")
    tarballs = find_tarballs(folder, dataset)
    if len(tarballs) > 1:
        names = ", ".join(p.name for p in tarballs)
        raise TarballError(f"several tarballs for {dataset.name} in {folder}: {names}")
    if tarballs:
        log.info("extracting %s", tarballs[0])
        return extract_file(tarballs[0], dest, max_total_bytes=byte_limit(settings))
    return sorted(p for p in folder.iterdir() if p.is_file())


# ----------------------------------------------------------------------------- outputs


TMP_SUFFIX_RE = re.compile(r"\.[0-9a-f]{8}\.tmp")


def _tmp_path(path: Path) -> Path:
    """Where :func:`_write_atomic` writes ``path`` before renaming it."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def _is_tmp_of(candidate: Path, name: str) -> bool:
    prefix = f".{name}"
    return candidate.name.startswith(prefix) and bool(
        TMP_SUFFIX_RE.fullmatch(candidate.name[len(prefix) :])
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = _tmp_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # e.g. disk full: no half-written message left behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class FileMessageBox(MessageBox):
    """State files in ``DIR/messages/``, each written aside and renamed into place.

    The dataset's lock is a locked hidden file beside them; a message's first line
    is its own name (docs/interface.rst)."""

    names_itself = True

    def __init__(self, root: Path):
        super().__init__()
        self.folder = root / "messages"
        self._locks: dict[str, locks.Lock] = {}

    def where(self, name: str) -> str:
        return str(self.folder / name)

    def _acquire(self, dataset: str) -> None:
        """Lock the dataset on this output (a hidden file beside its messages, which a
        run must be able to write); :class:`caldp.locks.Busy` if another run holds it."""
        root = self.folder.parent
        path = self.folder / f".{dataset}.lock"
        try:
            self._locks[dataset] = locks.acquire(path, f"the output {root} for {dataset}")
        except OSError as exc:
            raise OutputError(f"output folder {root} is not writable: {exc}") from exc

    def _unlock(self, dataset: str) -> None:
        lock = self._locks.pop(dataset, None)
        if lock is not None:
            lock.release()

    def _write(self, name: str, text: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.folder / name, text)

    def _remove(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)

    def _remove_interrupted_writes(self, names: tuple[str, ...]) -> None:
        """Temporary files of these messages left by a run killed while writing one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in self.folder.iterdir():
            if any(_is_tmp_of(path, name) for name in names):
                log.info("removing %s, left by an interrupted message write", path.name)
                path.unlink(missing_ok=True)


def _place(src: Path, dest: Path) -> None:
    """Hard-link ``src`` to ``dest`` where possible (same file system), else copy."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def dataset_dir(root: Path, dataset: Dataset) -> Path:
    """The folder of a dataset's results under the output folder ``root``."""
    return root / "data" / dataset.instrument / dataset.name


def make_tarball(paths: list[Path], dest: Path, arcroot: str) -> Path:
    with tarfile.open(dest, "w:gz", compresslevel=6) as tar:
        for p in paths:
            tar.add(p, arcname=f"{arcroot}/{p.name}", recursive=False)
    return dest


class FileOutput:
    """``file:DIR``: the browsable tree of docs/interface.rst (``settings``: none apply)."""

    def __init__(self, uri: Uri, settings: Settings):  # noqa: ARG002
        self.uri = uri
        self.root = Path(uri.location).expanduser()
        self.messages = FileMessageBox(self.root)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".caldp-write-check-{uuid.uuid4().hex[:8]}"
            try:
                probe.write_text("ok")
            finally:
                with contextlib.suppress(OSError):
                    probe.unlink()
        except OSError as exc:
            raise OutputError(f"output folder {self.root} is not writable: {exc}") from exc

    def dataset_dir(self, dataset: Dataset) -> Path:
        return dataset_dir(self.root, dataset)

    def deliver(self, plan: DeliveryPlan) -> Delivered:
        """Build the dataset's folder beside the final one, then swap it in."""
        final = self.dataset_dir(plan.dataset)
        final.parent.mkdir(parents=True, exist_ok=True)
        for kind in ("partial", "old"):  # left by a run that was killed while delivering
            for stale in final.parent.glob(f".{final.name}.{kind}-*"):
                log.info("removing %s, left by an interrupted delivery", stale.name)
                shutil.rmtree(stale, ignore_errors=True)
        partial = final.with_name(f".{final.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            partial.mkdir()
            if plan.inputs_only and plan.products:
                make_tarball(
                    plan.products, partial / f"{plan.dataset.name}_inputs.tar.gz", plan.dataset.name
                )
            else:
                for p in plan.products:
                    _place(p, partial / p.name)
            for sub, files in (
                ("previews", plan.previews),
                ("logs", plan.final_logs()),
                ("env", plan.env_files),
            ):
                if files:
                    (partial / sub).mkdir()
                    for p in files:
                        shutil.copyfile(p, partial / sub / p.name)
            self._swap(partial, final)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        files = sorted(str(p.relative_to(self.root)) for p in final.rglob("*") if p.is_file())
        log.info("delivered %d files to %s", len(files), final)
        return Delivered(message_lines=files)

    def deliver_log(self, dataset: Dataset, path: Path, *, again: bool = False) -> str:  # noqa: ARG002
        """Replace one delivered log with ``path`` (written aside, then renamed)."""
        dest = self.dataset_dir(dataset) / "logs" / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        aside = dest.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        try:
            shutil.copyfile(path, aside)
            os.replace(aside, dest)
        finally:
            aside.unlink(missing_ok=True)
        return str(dest.relative_to(self.root))

    @staticmethod
    def _swap(partial: Path, final: Path) -> None:
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(final, old)
        try:
            os.rename(partial, final)
        except BaseException:
            if old is not None:
                os.rename(old, final)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


class NoOutput:
    """``none``: calibrate, keep the results in the working folder, deliver nothing."""

    def __init__(self, uri: Uri, settings: Settings):  # noqa: ARG002
        self.uri = uri
        self.messages = NullMessageBox()

    def check(self) -> None:
        pass

    def deliver(self, plan: DeliveryPlan) -> Delivered:
        plan.final_logs()
        log.info("output is 'none': results stay in the working folder")
        return Delivered(message_lines=[])

    def deliver_log(self, dataset: Dataset, path: Path, *, again: bool = False) -> str:  # noqa: ARG002
        return ""  # the logs stay in the working folder

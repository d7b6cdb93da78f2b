"""Pick a dataset's own files among the fetched ones and copy them into the working folder.

Membership is exact: ``<root>_<type>.fits`` for the dataset's rootnames (the
dataset itself and, for an association, the exposures its ``_asn.fits`` lists
as present), or the files listed in a mosaic's poller file.  Never a short
name prefix, which would mix datasets that share one.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from caldp.datasets import Dataset
from caldp.errors import InputError
from caldp.hstfiles import HstFileError, read_association, read_poller
from caldp.instruments import Handler
from caldp.storage.tarball import LIMIT_ENV

log = logging.getLogger("caldp.inputs")

CHUNK = 4 * 2**20


class InputsError(InputError):
    """The dataset's input files are missing, incomplete or unusable."""


@dataclass
class Selection:
    files: list[Path]  # the dataset's input files where they were fetched
    env_file: Path | None = None  # <ds>_cal_env.txt
    poller: Path | None = None  # <ds>_input.out (SVM/MVM)


def canonical_name(path: Path) -> str:
    """The name a file has once staged: ``.fits.gz`` becomes ``.fits``."""
    name = path.name
    return name[:-3] if name.endswith(".fits.gz") else name


def select(dataset: Dataset, handler: Handler, candidates: Iterable[Path]) -> Selection:
    """The dataset's own files among ``candidates``; raise :class:`InputsError` if incomplete."""
    by_name: dict[str, Path] = {}
    for path in candidates:
        name = canonical_name(path)
        if name in by_name and by_name[name] != path:
            raise InputsError(f"{name} is given twice ({by_name[name].name} and {path.name})")
        by_name[name] = path

    env_file = by_name.get(f"{dataset.name}_cal_env.txt")
    if handler.mosaic:
        return _select_mosaic(dataset, by_name, env_file)

    roots = {dataset.name}
    asn_name = f"{dataset.name}_asn.fits"
    members: list[str] = []
    if dataset.is_association:
        if asn_name not in by_name:
            raise InputsError(f"association {dataset.name} has no {asn_name} among the inputs")
        try:
            members = read_association(by_name[asn_name]).exposures
        except HstFileError as exc:
            raise InputsError(str(exc)) from exc
        roots.update(members)
    wanted = {f"{root}_{sfx}.fits" for root in roots for sfx in handler.input_suffixes}
    files = sorted((p for n, p in by_name.items() if n in wanted), key=canonical_name)
    if not files:
        raise InputsError(
            f"no input files for {dataset.name} (looked for "
            f"{', '.join(sorted(f'{dataset.name}_{s}.fits' for s in handler.input_suffixes))})"
        )
    names = {canonical_name(p) for p in files}
    missing = [
        m
        for m in members
        if handler.members_have_files
        and not any(f"{m}_{sfx}.fits" in names for sfx in handler.input_suffixes)
    ]
    if missing:
        raise InputsError(
            f"association {dataset.name} lacks files for members {', '.join(missing)}"
        )
    return Selection(files=files, env_file=env_file)


def _select_mosaic(dataset: Dataset, by_name: dict[str, Path], env_file: Path | None) -> Selection:
    poller_name = f"{dataset.name}_input.out"
    poller = by_name.get(poller_name)
    if poller is None:
        raise InputsError(f"mosaic {dataset.name} has no poller file {poller_name}")
    try:
        listed = read_poller(poller)
    except HstFileError as exc:
        raise InputsError(str(exc)) from exc
    missing = [n for n in listed if n not in by_name]
    if missing:
        raise InputsError(f"files listed in {poller_name} are missing: {', '.join(missing)}")
    files = [by_name[n] for n in dict.fromkeys(listed)]
    return Selection(files=files, env_file=env_file, poller=poller)


def stage(paths: Sequence[Path], work_dir: Path, *, max_bytes: int) -> list[Path]:
    """Copy files into ``work_dir`` (gunzipping ``.fits.gz``); the originals are never touched.

    Together the copies may take at most ``max_bytes``
    (:func:`caldp.storage.tarball.byte_limit`, the limit of the tarball
    extraction): a few kilobytes of ``.fits.gz`` can unpack to any size.  On
    failure the copies made so far are removed.
    """
    limit = left = max_bytes
    staged: list[Path] = []
    try:
        for src in paths:
            dest = work_dir / canonical_name(src)
            if dest.exists():
                raise InputsError(f"{dest.name} would be staged twice")
            opener = gzip.open if src.name.endswith(".gz") else open
            try:
                with opener(src, "rb") as fin, open(dest, "xb") as fout:
                    staged.append(dest)
                    while chunk := fin.read(CHUNK):
                        left -= len(chunk)
                        if left < 0:
                            raise InputsError(
                                f"the input files take more than the {limit} byte limit "
                                f"({LIMIT_ENV}) once decompressed, at {src.name}"
                            )
                        fout.write(chunk)
            except (gzip.BadGzipFile, EOFError) as exc:
                raise InputsError(f"{src.name} is not a readable gzip file: {exc}") from exc
            dest.chmod(0o644)
    except BaseException:
        for path in staged:
            path.unlink(missing_ok=True)
        raise
    log.info("staged %d input files in %s", len(staged), work_dir)
    return staged

"""What a run delivers: the products, previews, logs and env file of a dataset.

Pure functions over the working folder; the output backends (file, S3) decide
where the files go.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from caldp import log as caldp_log
from caldp import sysexit
from caldp.datasets import Dataset
from caldp.exit_codes import ExitCode
from caldp.instruments import Handler
from caldp.storage import DeliveryPlan

log = logging.getLogger("caldp.delivery")

MOSAIC_EXTRA_PRODUCTS = (".txt", ".log", ".out")  # manifest, astrodrizzle.log, poller
BINARY_SUFFIXES = (".fits", ".jpg", ".png", ".gz")


def products(work_dir: Path, handler: Handler) -> list[Path]:
    """The data files in the working folder: inputs, calibrated products, trailers."""
    skip = tuple(f"_{s}.fits" for s in handler.not_delivered)
    wanted = (".fits", ".tra") + (MOSAIC_EXTRA_PRODUCTS if handler.mosaic else ())
    return sorted(
        p
        for p in work_dir.iterdir()
        if p.is_file() and p.name.endswith(wanted) and not p.name.endswith(skip)
    )


def snapshot(files_dir: Path, dest: Path) -> list[Path]:
    """Copies of the files in ``files_dir`` as they are now (logs, for delivery); the
    files themselves when there is no room for copies (a full working disk)."""
    shutil.rmtree(dest, ignore_errors=True)
    try:
        dest.mkdir()
        for p in sorted(files_dir.iterdir()):
            if p.is_file():
                shutil.copyfile(p, dest / p.name)
    except OSError as exc:
        log.warning("cannot copy the logs for delivery (%s): delivering them as they are", exc)
        shutil.rmtree(dest, ignore_errors=True)
        return sorted(p for p in files_dir.iterdir() if p.is_file())
    return sorted(dest.iterdir())


def build_plan(
    dataset: Dataset,
    handler: Handler,
    code: ExitCode,
    *,
    work_dir: Path,
    staged: Sequence[Path],
    previews: Sequence[Path],
    logs: Sequence[Path],
    env_files: Sequence[Path],
) -> DeliveryPlan:
    """Products and previews when calibration succeeded (or only previews failed);
    otherwise the inputs and the trailers that say why, as an inputs tarball."""
    plan = DeliveryPlan(dataset, logs=list(logs), env_files=list(env_files))
    if code in sysexit.PRODUCTS_DELIVERED:
        plan.products = products(work_dir, handler)
        plan.previews = sorted(previews)
    elif staged:
        trailers = [p for p in products(work_dir, handler) if p.name.endswith(".tra")]
        plan.products = sorted(set(staged) | set(trailers))
        plan.inputs_only = True
    if code == ExitCode.SUCCESS and not (set(plan.products) - set(staged)):
        log.warning("calibration produced no new files; delivering the inputs")
        plan.inputs_only = True
    return plan


def redact_text_files(plan: DeliveryPlan) -> None:
    """Redact credentials in every delivered text file the programs or the user wrote
    (trailers, mosaic logs and manifests, the env file), as the logs are redacted line
    by line when written.  The files are caldp's copies in the working folder."""
    for path in (*plan.products, *plan.previews, *plan.env_files):
        if not path.name.endswith(BINARY_SUFFIXES) and caldp_log.redact_file(path):
            log.info("credentials redacted in %s", path.name)

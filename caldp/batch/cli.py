"""``caldp-batch``: run a list of datasets on AWS Batch or locally, with memory retries."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from caldp.batch import decisions
from caldp.batch.decisions import DatasetRun, format_ladder, format_summary, parse_ladder

log = logging.getLogger("caldp.batch")

EPILOG = """\
retry table (as CALCLOUD's batch-event handler decides):
  0                   done
  status reason "Operator cancelled"
                      terminated: messages/terminated-<ds>, no retry
  31 32 33 34         memory: resubmitted on the next rung of the ladder
                      (a container killed for memory counts as 33)
  container reason CannotInspectContainer or DockerTimeoutError (any exit code;
  locally: the worker could not start)
                      retried on the same rung, at most --container-retries times
  anything else       reported as an error

ladder: machine sizes in GiB with their vCPUs; each job asks for the machine's
memory less 128 MiB per GiB, which ECS keeps (2G: 1792 MiB, ... 64G: 57344 MiB).

exit status: 0 when every dataset succeeded, 1 when some failed, 2 for a bad command line.
"""


def read_datasets(names: Sequence[str], files: Sequence[str]) -> list[str]:
    """Dataset names from the command line and from files (one a line, ``#`` comments,
    ``-`` for standard input), validated, duplicates dropped, order kept."""
    from caldp.datasets import parse

    found: list[str] = list(names)
    for name in files:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            found.extend(line.split())
    out: list[str] = []
    for name in found:
        ds = parse(name).name
        if ds not in out:
            out.append(ds)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="caldp-batch",
        description="Process many datasets with caldp-process: on AWS Batch job queues, "
        "or here with --local N workers, retrying memory failures on a memory ladder.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("datasets", nargs="*", metavar="DATASET", help="dataset names")
    p.add_argument(
        "-f",
        "--datasets-file",
        action="append",
        default=[],
        metavar="FILE",
        help="file of dataset names, one a line ('-' for standard input); may repeat",
    )
    p.add_argument(
        "--ladder",
        default=format_ladder(decisions.DEFAULT_LADDER),
        help="memory rungs: machine GiB[:vCPUs], increasing (default: %(default)s)",
    )
    p.add_argument(
        "--container-retries",
        type=int,
        default=decisions.DEFAULT_MAX_CONTAINER_RETRIES,
        metavar="N",
        help="retries on the same rung after a container fault, or locally a worker that "
        "could not start (default: %(default)s)",
    )
    p.add_argument(
        "--config",
        default=None,
        help="CONFIG profile given to caldp-process (default: caldp-config-aws on AWS Batch, "
        "caldp-config-onsite with --local)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    local = p.add_argument_group("local pool (--local N)")
    local.add_argument(
        "--local", type=int, metavar="N", help="run here with N caldp-process at a time"
    )
    local.add_argument(
        "--input",
        default="file:.",
        metavar="URI",
        help="INPUT_URI of caldp-process (default: %(default)s); {dataset} is replaced by "
        "the dataset name, e.g. s3://bucket/inputs/{dataset}",
    )
    local.add_argument(
        "--output",
        default="file:.",
        metavar="URI",
        help="OUTPUT_URI (default: %(default)s), e.g. s3://bucket/outputs/{dataset}",
    )
    local.add_argument(
        "--workdir",
        default="caldp-batch-work",
        metavar="DIR",
        help="working folders and logs of the attempts (default: %(default)s)",
    )
    local.add_argument(
        "--rlimit",
        choices=("as", "data", "none"),
        default="as",
        help="memory limit applied to each worker: RLIMIT_AS (default), RLIMIT_DATA, or none",
    )

    aws = p.add_argument_group("AWS Batch (default)")
    aws.add_argument(
        "--bucket",
        help="S3 bucket: inputs at s3://BUCKET/inputs, outputs under s3://BUCKET/outputs/<ds>",
    )
    aws.add_argument("--job-definition", default="caldp", metavar="NAME", help="(default: caldp)")
    aws.add_argument(
        "--queue-prefix",
        default="caldp",
        metavar="PREFIX",
        help="job queues PREFIX-2g, PREFIX-8g, ... one per rung (default: %(default)s)",
    )
    aws.add_argument("--queues", metavar="Q1,Q2,...", help="job queues, one per rung, in order")
    aws.add_argument(
        "--poll", type=float, default=30.0, metavar="SECONDS", help="(default: %(default)s)"
    )
    aws.add_argument(
        "--register-image",
        metavar="IMAGE",
        help="first register the job definition with this image; its environment takes "
        "CRDSBUCKET, CSYS_VER (default: the tag of $CAL_BASE_IMAGE), AWSDPVER (default: "
        "caldp-<version>) and AWSYSVER from this environment",
    )
    aws.add_argument("--endpoint-url", help="AWS endpoint (default: boto3's, AWS_ENDPOINT_URL)")
    return p


def _run_local(args: argparse.Namespace, datasets: list[str], ladder) -> list[DatasetRun]:
    from caldp.batch.local import LocalSettings, run_locally

    settings = LocalSettings(
        input_uri=args.input,
        output_uri=args.output,
        config=args.config or "caldp-config-onsite",
        workdir=Path(args.workdir),
        ladder=ladder,
        max_container_retries=args.container_retries,
        rlimit=args.rlimit,
    )
    return run_locally(datasets, args.local, settings)


def _run_aws(args: argparse.Namespace, datasets: list[str], ladder) -> list[DatasetRun]:
    import boto3

    from caldp.batch.aws import (
        BatchSettings,
        default_queues,
        image_tag,
        mark_terminated,
        register_job_definition,
        release_stale_lock,
        run_on_batch,
    )

    client = boto3.client("batch", endpoint_url=args.endpoint_url or None)
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url or None)
    job_definition = args.job_definition
    if args.register_image:
        env = {name: os.environ.get(name, "") for name in ("CRDSBUCKET", "AWSYSVER")}
        env["CSYS_VER"] = os.environ.get("CSYS_VER") or image_tag(
            os.environ.get("CAL_BASE_IMAGE", "")
        )
        env["AWSDPVER"] = os.environ.get("AWSDPVER") or _caldp_version()
        job_definition = register_job_definition(
            client, args.register_image, env, args.job_definition
        )
    queues = (
        tuple(q.strip() for q in args.queues.split(","))
        if args.queues
        else default_queues(args.queue_prefix, ladder)
    )
    settings = BatchSettings(
        bucket=args.bucket,
        queues=queues,
        job_definition=job_definition,
        ladder=ladder,
        config=args.config or "caldp-config-aws",
        poll_seconds=args.poll,
        max_container_retries=args.container_retries,
    )
    return run_on_batch(
        datasets,
        client,
        settings,
        on_terminated=lambda run: mark_terminated(s3, args.bucket, run.dataset),
        before_retry=lambda run: release_stale_lock(s3, args.bucket, run),
    )


def _caldp_version() -> str:
    from caldp import __version__

    return f"caldp-{__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        ladder = parse_ladder(args.ladder)
        datasets = read_datasets(args.datasets, args.datasets_file)
    except (OSError, ValueError) as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"caldp-batch: error: {exc}\n")
        return 2
    if not datasets:
        parser.print_usage(sys.stderr)
        sys.stderr.write("caldp-batch: error: no datasets given\n")
        return 2
    if args.container_retries < 0:
        sys.stderr.write("caldp-batch: error: --container-retries must be 0 or more\n")
        return 2
    try:
        return _run(args, datasets, ladder)
    except KeyboardInterrupt:
        if args.local:
            log.error("interrupted: the running workers were stopped")
        else:
            log.error("interrupted: the submitted jobs keep running on AWS Batch")
        return 130


def _run(args: argparse.Namespace, datasets: list[str], ladder) -> int:
    if args.local is not None:
        if args.local < 1:
            sys.stderr.write("caldp-batch: error: --local needs at least 1 worker\n")
            return 2
        runs = _run_local(args, datasets, ladder)
    else:
        if not args.bucket:
            sys.stderr.write("caldp-batch: error: --bucket is needed for AWS Batch\n")
            return 2
        try:
            runs = _run_aws(args, datasets, ladder)
        except ValueError as exc:
            sys.stderr.write(f"caldp-batch: error: {exc}\n")
            return 2
        except Exception as exc:
            if type(exc).__module__.split(".")[0] != "botocore":
                raise
            log.error("AWS Batch: %s", exc)
            return 1
    sys.stdout.write(format_summary(runs) + "\n")
    sys.stdout.flush()
    return 0 if all(r.succeeded for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``caldp-process`` and ``caldp-explain``."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from typing import NoReturn

from caldp import __version__, instruments, settings
from caldp.config import DEFAULT_PROFILE, PROFILES, ProfileError, get_profile
from caldp.datasets import DatasetNameError, parse
from caldp.exit_codes import ExitCode, explain, table
from caldp.settings import SettingsError
from caldp.storage import SCHEMES, UriError, parse_input_uri, parse_output_uri
from caldp.sysexit import SIMULATE_ENV, exit_receiver, simulated_code, simulation

log = logging.getLogger("caldp.cli")


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with the usage, as argparse does, but testable
        self.print_usage(sys.stderr)
        raise CommandLineError(message)


class CommandLineError(Exception):
    pass


def uri_forms(role: str) -> str:
    """``file:DIR, s3://bucket/prefix or astroquery:`` for the schemes with ``role``."""
    forms = [s.usage for s in SCHEMES.values() if getattr(s, role) is not None]
    return ", ".join(forms[:-1]) + " or " + forms[-1]


def build_parser() -> Parser:
    profiles = "\n".join(f"  {p.name:<22} {p.summary}" for p in PROFILES.values())
    parser = Parser(
        prog="caldp-process",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Calibrate one HST dataset: fetch its raw files, assign CRDS reference "
        "files, run the calibration programs, make previews and deliver the products.",
        epilog=f"profiles:\n{profiles}\n\nexit codes:\n{table()}\n\n"
        f"{SIMULATE_ENV}=N makes the step whose code is N fail, for testing the handling.",
    )
    examples = ", ".join(f"{h.title} ({h.example})" for h in instruments.HANDLERS.values())
    parser.add_argument("dataset", help=f"the dataset name: {examples}")
    parser.add_argument(
        "input_uri",
        nargs="?",
        default="file:.",
        help=f"{uri_forms('inputs')} (default file:.)",
    )
    parser.add_argument(
        "output_uri",
        nargs="?",
        default="file:.",
        help=f"{uri_forms('output')} (default file:.)",
    )
    parser.add_argument(
        "config",
        nargs="?",
        default=DEFAULT_PROFILE,
        help=f"configuration profile (default {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--version",
        action="store_true",
        help="print versions of caldp and its libraries, and where the calibration programs are",
    )
    parser.add_argument(
        "--programs",
        action="store_true",
        help="with --version: also ask each hstcal program found for its version (slower)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show DEBUG messages on the console"
    )
    return parser


def versions(ask_programs: bool = False) -> str:
    """caldp's and its libraries' versions and where the programs are; with
    ``ask_programs`` also each hstcal program's own ``--version`` (which runs it)."""
    from importlib import metadata

    lines = [f"caldp {__version__}"]
    for dist in ("crds", "calcos", "drizzlepac", "astropy", "numpy"):
        try:
            lines.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{dist} not installed")
    for program in instruments.programs():
        where = shutil.which(program)
        if not where:
            lines.append(f"{program} not found on PATH")
        elif program.endswith(".e") and ask_programs:  # hstcal's, which report their version
            lines.append(f"{program} {program_version(where)} ({where})")
        else:
            lines.append(f"{program} ({where})")
    return "\n".join(lines)


def program_version(path: str) -> str:
    """The first line an hstcal program prints for ``--version``."""
    import subprocess

    try:
        result = subprocess.run(  # noqa: S603 - a program found on PATH, argv list
            [path, "--version"], capture_output=True, text=True, errors="replace", timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"version unknown ({type(exc).__name__})"
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0] if first else f"version unknown (exit {result.returncode})"


def main(argv: Sequence[str] | None = None) -> int:
    """``caldp-process``; returns the exit status.  Anything that escapes is turned
    into its exit status by :func:`caldp.sysexit.exit_receiver`, logs flushed."""
    try:
        with exit_receiver():
            return _main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _main(argv: Sequence[str] | None) -> int:
    from caldp import log as caldp_log

    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args_list:
        print(versions(ask_programs="--programs" in args_list))
        return ExitCode.SUCCESS
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except CommandLineError as exc:
        print(f"caldp-process: error: {exc}", file=sys.stderr)
        return ExitCode.CMDLINE_ERROR
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.programs:
        print("caldp-process: error: --programs goes with --version", file=sys.stderr)
        return ExitCode.CMDLINE_ERROR
    caldp_log.setup_console(logging.DEBUG if args.verbose else logging.INFO)
    try:
        environment = settings.Settings.read()
        if simulated_code(simulation(environment.environ)) == ExitCode.CMDLINE_ERROR:
            raise CommandLineError(f"simulated command-line error ({SIMULATE_ENV}=2)")
        dataset = parse(args.dataset)
        input_uri = parse_input_uri(args.input_uri)
        output_uri = parse_output_uri(args.output_uri)
        profile = get_profile(args.config)
    except (CommandLineError, DatasetNameError, UriError, ProfileError, SettingsError) as exc:
        log.error("%s", exc)
        return ExitCode.CMDLINE_ERROR

    from caldp.pipeline import Request, process

    command = shlex.join(["caldp-process", *args_list])
    request = Request(
        dataset,
        input_uri,
        output_uri,
        profile,
        command,
        from_process_start=argv is None,
        settings=environment,
    )
    # run as the program (no argv given): it exits right after, SIGTERM stays ignored
    return int(process(request, exiting=argv is None))


def run_process() -> NoReturn:
    """The ``caldp-process`` command: :func:`main`, then the process ends at once.

    Everything is written and delivered by then; what is skipped is the tearing
    down of astropy, CRDS, numpy and boto3, 0.1-0.7 s that the run's own metrics
    could not include.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def explain_main(argv: Sequence[str] | None = None) -> int:
    """``caldp-explain [CODE...]``: what exit codes mean (no argument: all of them)."""
    parser = argparse.ArgumentParser(
        prog="caldp-explain",
        description="Say what caldp-process exit codes mean; with no CODE, list them all.",
    )
    parser.add_argument("codes", nargs="*", metavar="CODE", help="an exit code, number or name")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help: 0, bad usage: 2
        return int(exc.code or 0)
    if not args.codes:
        print(table())
        return 0
    status = 0
    for arg in args.codes:
        try:
            print(explain(arg))
        except ValueError as exc:
            print(
                f"caldp-explain: {exc} (with no argument, caldp-explain lists them all)",
                file=sys.stderr,
            )
            status = ExitCode.CMDLINE_ERROR
    return status


if __name__ == "__main__":
    run_process()

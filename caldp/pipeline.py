"""The whole caldp-process flow, top to bottom.

    check output -> check CRDS cache -> fetch -> version keywords -> bestrefs
    -> stage 1 -> stage 2 -> previews -> deliver -> messages

Each step is bracketed by its exit code (:func:`caldp.sysexit.exit_on_exception`).
Whatever happens, the run ends in :meth:`Run.finish`: metrics written, logs
and (when calibration succeeded) products delivered, then exactly one final
message that agrees with the exit status.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import shlex
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from caldp import (
    __version__,
    bestrefs,
    delivery,
    envfile,
    folders,
    headers,
    inputs,
    locks,
    metrics,
    runner,
)
from caldp import log as caldp_log
from caldp.config import Profile, apply_profile
from caldp.datasets import Dataset
from caldp.errors import OutputError, PreviewsError, ProgramFailed, Terminated
from caldp.exit_codes import ExitCode
from caldp.instruments import Handler, Stage, files_with, handler_for
from caldp.settings import Settings
from caldp.storage import SCHEMES, DeliveryPlan, Output, Uri, input_backend, open_output
from caldp.storage.tarball import byte_limit
from caldp.sysexit import (
    SIMULATE_ENV,
    CaldpError,
    after_failure,
    classify,
    exit_on_exception,
    exit_status,
    flush_logs,
    ignored_simulation,
    input_fault_code,
    simulated_code,
    simulation,
)

log = logging.getLogger("caldp.pipeline")


@dataclass(frozen=True)
class Request:
    dataset: Dataset
    input_uri: Uri
    output_uri: Uri
    profile: Profile
    command: str  # the command line, for the metrics files
    from_process_start: bool = False  # the process is this run: its metrics start with it
    settings: Settings = field(default_factory=Settings.read)  # the environment, read once


class Sigterm:
    """SIGTERM during one run: AWS Batch stops a job with it (an operator cancel, a timeout).

    Until the final message is begun, the first SIGTERM decides the outcome: exit
    143 (TERMINATED), with the logs and an ``error-`` message delivered.  Inside an
    :meth:`interrupts` block (the steps, the delivery) it raises :class:`Terminated`
    at once, which stops a running program; anywhere else it is recorded, and the
    next block raises it as it begins.  From :meth:`commit` on, the final message is
    being written and SIGTERM changes nothing: the outcome stands.  Later SIGTERMs
    are ignored (one is enough: caldp is already wrapping up).
    """

    def __init__(self) -> None:
        self.signame: str | None = None
        self.interruptible = False
        self.final = False
        self.previous: object = None
        self.installed = False

    def install(self) -> Sigterm:
        try:
            self.previous = signal.signal(signal.SIGTERM, self._handle)
            self.installed = True
        except ValueError:  # not the main thread: SIGTERM keeps its disposition
            pass
        return self

    def uninstall(self) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self.previous)  # type: ignore[arg-type]
            self.installed = False

    def _handle(self, signum: int, frame: object) -> None:  # noqa: ARG002
        if self.final or self.signame is not None:
            return
        self.signame = signal.Signals(signum).name
        if self.interruptible:
            self.interruptible = False
            raise Terminated(self.signame)

    @contextmanager
    def interrupts(self) -> Iterator[None]:
        """SIGTERM raises :class:`Terminated` in the block (at once if one came already)."""
        self.interruptible = True  # before looking: a SIGTERM in between then raises
        try:
            if self.signame is not None:
                raise Terminated(self.signame)
            yield
        finally:
            self.interruptible = False

    def commit(self) -> bool:
        """The outcome is decided (the final message is next): later SIGTERMs change
        nothing.  True if one came before."""
        self.final = True
        return self.signame is not None


@dataclass
class Run:
    request: Request
    handler: Handler
    work_dir: Path
    output: Output
    settings: Settings  # the request's, with the profile's defaults added
    times: metrics.StepTimes = field(default_factory=metrics.StepTimes)
    staged: list[Path] = field(default_factory=list)
    env_file: Path | None = None
    program_env: dict[str, str] = field(default_factory=dict)
    previews: list[Path] = field(default_factory=list)
    output_ok: bool = False
    sigterm: Sigterm = field(default_factory=Sigterm)
    peak: metrics.PeakMemory = field(default_factory=metrics.PeakMemory)
    preview_usage: metrics.Usage | None = None  # the previews step's share of the metrics
    work_problem: OSError | None = None  # the working folder could not be made

    @property
    def dataset(self) -> Dataset:
        return self.request.dataset

    @property
    def logs_dir(self) -> Path:
        return self.work_dir / "logs"

    @property
    def previews_dir(self) -> Path:
        return self.work_dir / "previews"

    # ------------------------------------------------------------------ the flow

    def calibrate(self) -> None:
        ds = self.dataset
        # =25 fails the delivery (below), as an upload failure would, not this check
        with self.step("check output", ExitCode.S3_UPLOAD_ERROR, simulate=False):
            self.output.messages.lock(ds.name)  # before anything is written there
            self.output.check()
            self.output_ok = True
            self.output.messages.start(ds.name)

        if self.work_problem is not None:
            with self.step("working folder", ExitCode.WORK_FOLDER_ERROR):
                raise self.work_problem

        # CALDP_SIMULATE_ERROR=27 fails the bestrefs step, not this check
        with self.step("check CRDS cache", ExitCode.BESTREFS_ERROR, simulate=False):
            self.check_crds_cache()

        fetch_code = SCHEMES[self.request.input_uri.scheme].fetch_code
        with self.step("fetch", fetch_code):
            self.fetch()

        if simulated_code(simulation(self.settings.environ)) == ExitCode.GENERIC_ERROR:
            raise RuntimeError(f"simulated unbracketed error ({SIMULATE_ENV}=1)")

        with self.step("version keywords", input_fault_code(fetch_code)):
            self.stamp_headers()

        with self.step("bestrefs", ExitCode.BESTREFS_ERROR):
            self.assign_references()

        for stage in self.handler.stages:
            with self.step(stage.name, stage.exit_code):
                self.run_stage(stage)

        with self.step("previews", ExitCode.CREATE_PREVIEWS_ERROR):
            self.make_previews()

    @contextmanager
    def step(self, name: str, code: ExitCode, *, simulate: bool = True) -> Iterator[None]:
        log.info("step %s: start", name)
        start = time.monotonic()
        try:
            with exit_on_exception(
                code,
                f"step {name} failed",
                simulation=simulation(self.settings.environ) if simulate else "",
            ):
                try:
                    yield
                except BaseException:
                    # room for the failure's log lines, metrics and delivery, were the
                    # working disk full
                    folders.release_reserve(self.work_dir)
                    raise
        except BaseException:
            seconds = time.monotonic() - start
            self.times.add(name, seconds)
            log.info("step %s: FAILED after %.2f s", name, seconds)
            raise
        seconds = time.monotonic() - start
        self.times.add(name, seconds)
        log.info("step %s: done in %.2f s", name, seconds)

    # ------------------------------------------------------------------ steps

    def fetch(self) -> None:
        download = self.work_dir / "download"
        download.mkdir(exist_ok=True)
        module = input_backend(self.request.input_uri)
        try:
            candidates = module.fetch(
                self.request.input_uri.location, self.dataset, download, self.settings
            )
            selection = inputs.select(self.dataset, self.handler, candidates)
            to_stage = list(selection.files)
            if selection.poller is not None:
                to_stage.append(selection.poller)
            self.staged = inputs.stage(to_stage, self.work_dir, max_bytes=byte_limit(self.settings))
            if selection.env_file is not None:
                values = envfile.read(selection.env_file)  # checked before it is copied
                env_dir = self.work_dir / "env"
                env_dir.mkdir(exist_ok=True)
                self.env_file = env_dir / selection.env_file.name
                shutil.copyfile(selection.env_file, self.env_file)
                self.program_env.update(values)
        finally:  # what was extracted or downloaded is staged, or not wanted
            shutil.rmtree(download, ignore_errors=True)
        log.info("inputs: %s", ", ".join(p.name for p in self.staged))

    def fits_inputs(self) -> list[Path]:
        return [p for p in self.staged if p.name.endswith(".fits")]

    def stamp_headers(self) -> None:
        """The version keywords in every FITS input, and RANDSEED=1 in the raws that get
        it, with one opening of each file."""
        fits_files = self.fits_inputs()
        versions = headers.version_values(self.settings.environ)
        raws = set(files_with(fits_files, *self.handler.randseed_suffixes))
        others = [p for p in fits_files if p not in raws]
        headers.update_primary(others, versions)
        if raws:
            headers.update_primary(sorted(raws), {**versions, "RANDSEED": 1})
            log.info("RANDSEED=1 set in %s", ", ".join(p.name for p in sorted(raws)))

    def check_crds_cache(self) -> None:
        """The read-only profiles need their cache before the long work starts; the
        others fill it during the run."""
        profile = self.request.profile
        if profile.sync_references or profile.references_from_s3 or not self.handler.run_bestrefs:
            return
        value = self.settings.get("CRDS_PATH")
        from_profile = profile.defaults_for(self.settings.environ).get("CRDS_PATH") == value
        origin = f"the default of {profile.name}" if from_profile else "set in the environment"
        bestrefs.check_cache(Path(value).expanduser(), origin)

    def assign_references(self) -> None:
        """Best references into the headers, the files in the cache, and the folders
        (``jref``, ...) where the programs find them.  CRDS sees the profile's
        values in ``os.environ`` meanwhile."""
        with self.settings.exported():
            self._assign_references()

    def _assign_references(self) -> None:
        crds_path = Path(self.settings.get("CRDS_PATH")).expanduser()
        if not self.handler.run_bestrefs:
            log.info("no bestrefs for %s: its inputs are already calibrated", self.handler.title)
            self.use_references(bestrefs.referenced_files(self.fits_inputs()), crds_path)
            return
        profile = self.request.profile
        targets = files_with(self.staged, *self.handler.bestrefs_suffixes)
        crds_bucket = self.settings.get("CRDSBUCKET") if profile.references_from_s3 else ""
        pinned = None
        if profile.references_from_s3:
            from caldp import crds_s3

            if not crds_bucket:
                raise bestrefs.BestrefsError(f"CRDSBUCKET is not set (profile {profile.name})")
            crds_s3.prepare_config(crds_bucket, crds_path, self.settings)
            pinned = crds_s3.pinned_context_of(
                self.settings, self.request.output_uri, self.request.input_uri
            )
        context = bestrefs.choose_context(crds_path, self.settings.environ, pinned)
        if crds_bucket:
            crds_s3.prepare_rules(
                crds_bucket, crds_path, context, bestrefs.instruments(targets), self.settings
            )
        crds_handler = caldp_log.attach_file(self.logs_dir / caldp_log.PROCESS_LOG, "CRDS")
        try:
            result = bestrefs.run(targets, crds_path, context, sync=profile.sync_references)
        finally:
            caldp_log.detach(crds_handler, "CRDS")
        if crds_bucket:
            crds_s3.fetch_references(crds_bucket, crds_path, result.references, self.settings)
        missing = self.use_references(result.references, crds_path)
        if missing and crds_bucket:
            raise bestrefs.BestrefsError(f"references fetched but not found: {', '.join(missing)}")

    def use_references(self, references: dict[str, str], crds_path: Path) -> list[str]:
        """Give the programs the folders where ``references`` are; return those found nowhere."""
        located = bestrefs.locate(references, crds_path)
        self.program_env.update(located.dirs)
        if located.missing:
            log.warning(
                "%d reference file(s) are not in the CRDS cache %s: %s; "
                "a calibration program that needs one will fail",
                len(located.missing),
                crds_path,
                ", ".join(located.missing),
            )
        return located.missing

    def expects_previews(self) -> bool:
        """False when every raw input makes a product without previews (COS acquisitions)."""
        raws = files_with(self.staged, *self.handler.bestrefs_suffixes)
        quiet = files_with(raws, *self.handler.no_preview_suffixes)
        return not raws or len(quiet) < len(raws)

    def run_stage(self, stage: Stage) -> None:
        argv = stage.argv(self.dataset, self.staged)
        if stage is self.handler.stages[0] and self.expects_previews():
            import_in_background(*preview_modules(self.handler))
        result = runner.run(
            argv, cwd=self.work_dir, env=self.settings.child_environ(self.program_env), logger=log
        )
        self.peak.program_done()
        if result.returncode in stage.ok_returncodes:
            if result.returncode != 0:
                log.info(
                    "%s exit %d is not a failure for %s",
                    result.program,
                    result.returncode,
                    self.handler.title,
                )
            return
        raise ProgramFailed(
            result.program,
            result.status,
            "\n".join(result.tail[-5:]),
            memory_error=result.memory_error,
            enomem=result.enomem,
        )

    def make_previews(self) -> None:
        from caldp import previews

        self.previews_dir.mkdir(exist_ok=True)
        handler = caldp_log.attach_file(self.logs_dir / "preview.txt", "caldp.previews")
        start = metrics.Usage.now()
        peak_before = self.peak.peak_kb()
        status = ExitCode.CREATE_PREVIEWS_ERROR
        products: list[Path] = []
        try:
            report = previews.make_previews(
                self.dataset.kind, self.dataset.name, self.work_dir, self.previews_dir
            )
            products = report.products
            self.previews = list(report.made)
            if report.ok:
                status = ExitCode.SUCCESS
            else:
                failed = ", ".join(f"{name} ({why})" for name, why in report.failures.items())
                raise PreviewsError(f"previews failed for {failed}")
        finally:
            # The previews' share of the run: their time, and how far they raised its peak.
            rise = max(self.peak.peak_kb() - peak_before, 0)
            self.preview_usage = metrics.Usage.now().minus(start, rise)
            command = shlex.join(
                ["caldp-previews", "-o", self.previews_dir.name, *(p.name for p in products)]
            )
            (self.logs_dir / "preview_metrics.txt").write_text(
                metrics.gnu_time_report(command, self.preview_usage, status)
            )
            caldp_log.detach(handler, "caldp.previews")

    # ------------------------------------------------------------------ the end

    def plan(self, code: ExitCode, write_logs) -> DeliveryPlan:
        plan = delivery.build_plan(
            self.dataset,
            self.handler,
            code,
            work_dir=self.work_dir,
            staged=self.staged,
            previews=self.previews,
            logs=[],
            env_files=[self.env_file] if self.env_file else [],
        )
        delivery.redact_text_files(plan)
        plan.write_logs = write_logs
        return plan

    def final_logs(
        self, code: ExitCode, process_start: metrics.Usage, disk: metrics.DiskMonitor
    ) -> list[Path]:
        """The metrics, now that the products are delivered, and a copy of the logs."""
        self.write_metrics(code, process_start, disk)
        log_result(code)
        flush_logs()  # the delivered logs end with the result line
        return delivery.snapshot(self.logs_dir, self.work_dir / "delivered-logs")

    def finish(
        self, code: ExitCode, process_start: metrics.Usage, disk: metrics.DiskMonitor
    ) -> ExitCode:
        """Metrics, delivery, messages; returns the final exit status.

        A SIGTERM before the final message makes the outcome 143: a delivery it
        interrupts, or one already made for another outcome, is made again for 143.
        """
        disk.stop()
        folders.release_reserve(self.work_dir)
        terminated = ExitCode.TERMINATED
        try:
            with self.sigterm.interrupts():
                code, lines = self.deliver(code, process_start, disk)
        except Terminated:
            code, lines = self.deliver(terminated, process_start, disk)
        if self.sigterm.commit() and code != terminated:
            log.error(
                "terminated by %s before the final message -> exit %d %s",
                self.sigterm.signame,
                terminated.value,
                terminated.name,
            )
            code, lines = self.deliver(terminated, process_start, disk)
        if not self.output_ok:
            return code
        try:
            with self.step("messages", ExitCode.S3_UPLOAD_ERROR, simulate=False):
                where = self.output.messages.finish(
                    self.dataset.name, code == ExitCode.SUCCESS, lines
                )
                if where:
                    log.info("final message %s", where)
        except CaldpError as exc:
            code = after_failure(code, exc.exit_code, of_delivery=False)
        self.write_metrics(code, process_start, disk)  # metrics.json: every step, to the end
        if lines:
            try:
                self.output.deliver_log(self.dataset, self.logs_dir / "metrics.json", again=True)
            except (OutputError, OSError) as exc:
                log.warning("metrics.json with the messages step not delivered: %s", exc)
        return code

    def deliver(
        self, code: ExitCode, process_start: metrics.Usage, disk: metrics.DiskMonitor
    ) -> tuple[ExitCode, list[str]]:
        """The delivery for ``code``, with the metrics and the result line written once the
        products are delivered; returns the status (a failed delivery of products is 25)
        and the final message's lines (none when nothing was delivered)."""
        if not self.output_ok:
            self.write_metrics(code, process_start, disk)
            log_result(code)
            log.error("the output location is not usable: nothing delivered, no final message")
            return code, []
        try:
            with exit_on_exception(ExitCode.S3_UPLOAD_ERROR, "preparing the delivery"):
                plan = self.plan(
                    code, functools.partial(self.final_logs, code, process_start, disk)
                )
            with self.step("deliver", ExitCode.S3_UPLOAD_ERROR):
                return code, self.output.deliver(plan).message_lines
        except CaldpError as exc:
            code = after_failure(code, exc.exit_code, of_delivery=True)
            self.write_metrics(code, process_start, disk)
            return code, []

    def write_metrics(
        self, code: ExitCode, start: metrics.Usage, disk: metrics.DiskMonitor
    ) -> None:
        """The metrics files; a failure to write them (a full working disk) is logged, and
        the run still delivers what it can and writes its final message."""
        try:
            metrics.write_run_metrics(
                self.logs_dir,
                self.request.command,
                self.dataset.name,
                code,
                start=start,
                peak=self.peak,
                previews=self.preview_usage,
                disk=disk,
                times=self.times,
            )
        except OSError as exc:
            log.error("cannot write the metrics files in %s: %s", self.logs_dir, exc)


def log_result(code: ExitCode) -> None:
    log.info("result: exit %d %s (%s)", code.value, code.name, code.description)


def import_in_background(*modules: str | Callable[[], object]) -> None:
    """Import modules a later step needs in a background thread, while this one waits
    on I/O or on a program (an import holds the interpreter; those waits do not).
    Each is a module's name or a function that imports it."""

    def imports() -> None:
        for module in modules:
            try:
                importlib.import_module(module) if isinstance(module, str) else module()
            except Exception:  # noqa: BLE001 - the step that needs it reports the error
                return

    threading.Thread(target=imports, name="caldp-imports", daemon=True).start()


def preview_modules(handler: Handler) -> list[str]:
    """The modules the previews of this kind of dataset will import."""
    modules = []
    if handler.spectral_suffixes:
        modules += ["caldp.previews.spectra", "matplotlib.pyplot"]
    if handler.image_suffixes:
        modules += ["caldp.previews.images", "PIL.Image"]
    return modules


def process(request: Request, *, exiting: bool = False) -> ExitCode:
    """Run the pipeline for one dataset; return the exit status (never raises).

    SIGTERM is handled as :class:`Sigterm` says while it runs.  ``exiting``: the
    caller exits right after, and SIGTERM stays ignored until then, so that nothing
    can change the outcome (otherwise its previous handler is restored).
    """
    sigterm = Sigterm().install()
    try:
        return _process(request, sigterm)
    finally:
        if not exiting:
            sigterm.uninstall()


def _process(request: Request, sigterm: Sigterm) -> ExitCode:
    process_start = (
        metrics.Usage.at_process_start() if request.from_process_start else metrics.Usage.now()
    )
    environ = dict(request.settings.environ)
    applied = apply_profile(request.profile, environ)
    settings = request.settings.adding(applied)
    heavy: list[str | Callable[[], object]] = ["astropy.io.fits"]
    if handler_for(request.dataset).run_bestrefs:
        heavy.append(bestrefs.load_crds)
    import_in_background(*heavy)
    work = folders.work_dir(request.dataset, settings.get("CALDP_HOME"))
    work_lock: locks.Lock | None = None
    problem: OSError | None = None
    try:
        folders.check_apart(request.dataset, request.input_uri, request.output_uri, work)
        work_lock = locks.acquire(work.with_name(f"{work.name}.lock"), f"the working folder {work}")
        folders.prepare_work_dir(work)
    except (folders.FoldersError, locks.Busy) as exc:
        if work_lock is not None:
            work_lock.release()
        log.error("%s", exc)
        code = classify(exc) if isinstance(exc, locks.Busy) else ExitCode.CMDLINE_ERROR
        return ExitCode.TERMINATED if sigterm.commit() else code
    except OSError as exc:
        if work_lock is not None:
            work_lock.release()
            work_lock = None
        problem = exc
        try:  # a folder for the logs, so that they and the error- message are delivered
            work = Path(tempfile.mkdtemp(prefix=f"caldp-{request.dataset.name}-"))
            (work / "logs").mkdir()
        except OSError as again:
            log.error(
                "cannot make the working folder %s: %s, nor a temporary one: %s", work, exc, again
            )
            code = classify(exc, ExitCode.WORK_FOLDER_ERROR)
            return ExitCode.TERMINATED if sigterm.commit() else code
    try:
        return _run(request, settings, sigterm, work, problem, process_start)
    finally:
        if work_lock is not None:
            work_lock.release()
            with contextlib.suppress(OSError):
                work.parent.rmdir()  # caldp-work/, when no other run is using it


def _run(
    request: Request,
    settings: Settings,
    sigterm: Sigterm,
    work: Path,
    work_problem: OSError | None,
    process_start: metrics.Usage,
) -> ExitCode:
    """The run in its working folder ``work``, its lock held."""
    file_handler = caldp_log.attach_file(work / "logs" / caldp_log.PROCESS_LOG)
    disk = metrics.DiskMonitor(work).start()
    code = ExitCode.SUCCESS
    run: Run | None = None
    try:
        log.info("caldp %s: %s", __version__, request.command)
        log.info(
            "dataset %s (%s), input %s, output %s, profile %s",
            request.dataset.name,
            handler_for(request.dataset).title,
            request.input_uri,
            request.output_uri,
            request.profile.name,
        )
        for key, value in sorted(settings.added.items()):
            log.info("profile sets %s=%s", key, value)
        ignored = ignored_simulation(simulation(settings.environ))
        if ignored:
            log.warning("%s=%r is not a caldp exit code: ignored", SIMULATE_ENV, ignored)
        log.info("working folder %s", work)
        output = open_output(request.output_uri, settings)
        run = Run(request, handler_for(request.dataset), work, output, settings, sigterm=sigterm)
        run.work_problem = work_problem
        try:
            with sigterm.interrupts():
                run.calibrate()
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a status
            code = exit_status(exc)
            if isinstance(exc, Terminated):
                if not exc.logged:  # else the step it stopped said so
                    log.error(
                        "terminated by %s outside any step -> exit %d %s",
                        exc.signame,
                        code.value,
                        code.name,
                    )
            elif not isinstance(exc, CaldpError):
                log.error("error outside any step: %s", exc)
                log.debug("traceback", exc_info=(type(exc), exc, exc.__traceback__))
        code = run.finish(code, process_start, disk)
    except BaseException as exc:  # noqa: BLE001 - the last line of defence
        code = exit_status(exc)
        log.error("error while finishing: %s", exc)
    finally:
        if sigterm.commit():  # came before any final message (finish made it 143 then)
            code = ExitCode.TERMINATED
        disk.stop()
        if run is not None:
            run.output.messages.release(request.dataset.name)
        keep = (
            code != ExitCode.SUCCESS
            or request.output_uri.scheme == "none"
            or bool(settings.get("CALDP_KEEP_WORK"))
        )
        kept = f"; the full log is kept in {work / 'logs' / 'process.txt'}" if keep else ""
        log.info("caldp-process %s exit %d %s%s", request.dataset.name, code.value, code.name, kept)
        flush_logs()
        caldp_log.detach(file_handler)
    if not keep:
        folders.remove_work_dir(work)
    return code

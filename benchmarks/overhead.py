"""caldp's own cost around the calibration programs.

    CALDP_TESTDATA=../shared/testdata python benchmarks/overhead.py [--runs 3] [--sleep 1]

A SYNTHETIC 4-member ACS association (tests/synthetic.py) is calibrated end to
end by ``python -m caldp`` into a ``file:`` output, with the stand-in programs
(tests/standins) first on PATH, each sleeping a fixed time
(``CALDP_STANDIN_SLEEP``), and the real offline CRDS cache of
``$CALDP_TESTDATA/crds-cache``.

Figures (median of the runs):

* wall time of the whole run, and the time spent inside the programs (each
  program's start-to-exit time, from caldp's own log lines ``<program> exited 0
  after X s``);
* caldp's overhead = wall time - program time, in seconds and as a percentage
  of the wall time, and caldp's own CPU time;
* peak resident set of the caldp process itself (``getrusage(RUSAGE_SELF)``,
  read at its exit through a small wrapper: children are not included);
* the import time of ``python -c "import caldp.cli"`` beyond a bare interpreter.

Targets: caldp's overhead under 1 s and its peak RSS under 150 MB.  Exits 0 and
prints the figures; prints why and exits 0 when CALDP_TESTDATA is not set.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ASN = "j8cb01010"
MEMBERS = 4
TARGET_SECONDS = 1.0
TARGET_RSS_MB = 150.0
PROGRAM_LINE = re.compile(r": (\S+) (?:exited -?\d+|killed by \S+) after ([0-9.]+) s$", re.M)
WRAPPER = r"""
import atexit, json, resource, runpy, sys, time
report, argv = sys.argv[1], sys.argv[2:]
def write_report():
    me = resource.getrusage(resource.RUSAGE_SELF)
    with open(report, "w") as f:
        json.dump({"max_rss_kb": me.ru_maxrss, "cpu": me.ru_utime + me.ru_stime}, f)
atexit.register(write_report)
sys.argv = ["caldp", *argv]
runpy.run_module("caldp", run_name="__main__", alter_sys=True)
"""


def environment(tmp: Path, crds_cache: Path, sleep: float) -> dict[str, str]:
    from tests.standins import standin_env

    env = standin_env()
    for key in list(env):
        if key.startswith(("CALDP_STANDIN_", "CALDP_SIMULATE")) or key == "CRDS_CONTEXT":
            del env[key]
    env.update(
        CRDS_PATH=str(crds_cache),
        CRDS_READONLY_CACHE="1",
        CRDS_SERVER_URL="https://hst-serverless-mode.stsci.edu",
        CRDS_OBSERVATORY="hst",
        CALDP_HOME=str(tmp / "home"),
        CALDP_STANDIN_SLEEP=str(sleep),
    )
    return env


def one_run(tmp: Path, src: Path, env: dict[str, str], index: int) -> dict[str, float]:
    out = tmp / f"out-{index}"
    report = tmp / f"rusage-{index}.json"
    argv = [ASN, f"file:{src}", f"file:{out}", "caldp-config-local"]
    start = time.monotonic()
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", WRAPPER, str(report), *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"caldp-process exited {done.returncode}:\n{done.stderr[-3000:]}")
    log = (out / "data" / "acs" / ASN / "logs" / "process.txt").read_text()
    programs = [(name, float(seconds)) for name, seconds in PROGRAM_LINE.findall(log)]
    usage = json.loads(report.read_text())
    steps = json.loads((out / "data" / "acs" / ASN / "logs" / "metrics.json").read_text())
    return {
        "wall": wall,
        "programs": sum(s for _, s in programs),
        "program_count": len(programs),
        "cpu": usage["cpu"],
        "rss_mb": usage["max_rss_kb"] / 1024.0,
        **{f"step {k}": v for k, v in steps["steps"].items()},
    }


def import_seconds(repeats: int = 5) -> float:
    def best(code: str) -> float:
        times = []
        for _ in range(repeats):
            start = time.monotonic()
            subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603
            times.append(time.monotonic() - start)
        return min(times)

    return best("import caldp.cli") - best("pass")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each program sleeps")
    args = parser.parse_args(argv)

    testdata = os.environ.get("CALDP_TESTDATA")
    if not testdata or not (Path(testdata) / "crds-cache").is_dir():
        print("CALDP_TESTDATA is not set (or has no crds-cache): the overhead benchmark needs")
        print("the real offline CRDS cache; skipped")
        return 0
    from tests import synthetic

    with tempfile.TemporaryDirectory(prefix="caldp-overhead-") as name:
        tmp = Path(name)
        src = tmp / "src"
        synthetic.make_acs_association(src, ASN, members=MEMBERS)
        env = environment(tmp, Path(testdata).resolve() / "crds-cache", args.sleep)
        one_run(tmp, src, env, -1)  # warm the file caches; not counted
        results = [one_run(tmp, src, env, i) for i in range(args.runs)]

    med = {key: statistics.median(r[key] for r in results) for key in results[0]}
    overhead = med["wall"] - med["programs"]
    imports = import_seconds()
    print(
        f"SYNTHETIC {MEMBERS}-member ACS association {ASN}, stand-in programs sleeping "
        f"{args.sleep:g} s each, median of {args.runs} runs"
    )
    print(f"  wall time of the run          {med['wall']:7.2f} s")
    print(f"  inside the programs ({int(med['program_count'])})       {med['programs']:7.2f} s")
    print(
        f"  caldp's overhead              {overhead:7.2f} s  "
        f"({100 * overhead / med['wall']:.1f} % of the wall time; target < {TARGET_SECONDS:g} s)"
    )
    print(f"  caldp's own CPU time          {med['cpu']:7.2f} s")
    print(
        f"  caldp's peak RSS (itself)     {med['rss_mb']:7.1f} MB (target < {TARGET_RSS_MB:g} MB)"
    )
    print(f"  import caldp.cli              {imports:7.3f} s (beyond a bare interpreter)")
    print(
        "  steps (s): "
        + ", ".join(f"{k[5:]} {v:.2f}" for k, v in med.items() if k.startswith("step "))
    )
    verdict = overhead < TARGET_SECONDS and med["rss_mb"] < TARGET_RSS_MB
    print(f"  within targets: {'yes' if verdict else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

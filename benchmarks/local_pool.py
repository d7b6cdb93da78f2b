"""How much faster ``caldp-batch --local 2`` is than ``--local 1`` on this machine.

    python benchmarks/local_pool.py [--datasets 8] [--repeats 3]

Eight SYNTHETIC COS acquisitions (``caldp.sample``: real ``calcos`` runs on
each and finds nothing to calibrate, real CRDS assigns their references from a
tiny synthetic cache) are calibrated by ``caldp-batch --local N`` into a
``file:`` output, N = 1 then N = 2, alternating, ``--repeats`` times each.
Needs the ``cal`` extra (calcos); no test data, no network.

Prints the machine's load, the median wall time of each N with its spread,
the speedup of N = 2 over N = 1 against the goal (>= 1.8x on 2 idle cores),
and where the time goes: the CPU time of all the workers (caldp and the
programs it ran) against the wall time, which bounds what a second worker can
win.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.8


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def make_inputs(root: Path, count: int) -> tuple[list[str], Path]:
    from caldp.sample import write_acquisition, write_crds_cache

    names = [f"lsampl{n:02d}q" for n in range(1, count + 1)]
    for name in names:
        write_acquisition(root / "inputs" / name, name)
    return names, write_crds_cache(root / "crds_cache")


def one_run(root: Path, names: list[str], workers: int, env: dict[str, str], index: int):
    out = root / f"out-{workers}-{index}"
    work = root / f"work-{workers}-{index}"
    argv = [
        sys.executable, "-m", "caldp.batch.cli", "--local", str(workers),
        "--input", f"file:{root / 'inputs' / '{dataset}'}", "--output", f"file:{out}",
        "--config", "caldp-config-local", "--workdir", str(work), "--rlimit", "none", *names,
    ]  # fmt: skip
    cpu_before = children_cpu()
    start = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    wall = time.monotonic() - start
    cpu = children_cpu() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"caldp-batch exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if shutil.which("calcos") is None:
        print("calcos is not on PATH (pip install 'caldp[cal]'): skipped")
        return 0
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; ", end="")
    print(f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="caldp-pool-") as name:
        root = Path(name)
        names, cache = make_inputs(root, args.datasets)
        env = {**os.environ, "CRDS_PATH": str(cache)}
        env.pop("CALDP_HOME", None)
        one_run(root, names[:2], 2, env, -1)  # warm the file caches; not counted
        results: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for i in range(args.repeats):
            for workers in (1, 2):
                results[workers].append(one_run(root, names, workers, env, i))
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    med = {}
    for workers, runs in results.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        med[workers] = statistics.median(walls)
        print(
            f"  --local {workers}: {med[workers]:6.2f} s median of {len(walls)} "
            f"(spread {min(walls):.2f}-{max(walls):.2f}); CPU {statistics.median(cpus):6.2f} s "
            f"= {statistics.median(cpus) / med[workers]:.2f} cores busy"
        )
    speedup = med[1] / med[2]
    cpu1 = statistics.median(c for _, c in results[1])
    ceiling = min(2.0, (os.cpu_count() or 1) * med[1] / cpu1) if cpu1 else 2.0
    print(f"  speedup N=2 over N=1: {speedup:.2f}x (goal >= {GOAL}x)")
    print(f"  ceiling from CPU use at N=1 (cores / cores busy): {ceiling:.2f}x")
    print(f"  within goal: {'yes' if speedup >= GOAL else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

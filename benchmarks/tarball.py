"""Time of the input tarball extraction against the number of members.

    python benchmarks/tarball.py [--counts 10000 20000 40000]

Makes tarballs of one-byte members in one folder (the case where a check that
compares each member with those before it shows most), extracts each with
``caldp.storage.tarball.extract_file`` into a scratch folder, and prints the
seconds, the microseconds per member, and the per-member time relative to the
smallest count.  Linear extraction keeps that ratio near 1 (the file system's
own cost per file grows a little with the folder); a quadratic one makes it
grow with the count (about 4 at 40,000 against 10,000).  Exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from caldp.settings import Settings
    from caldp.storage.tarball import byte_limit, extract_file
    from tests.support.tarballs import many_members

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 20_000, 40_000])
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="caldp-bench-tarball-"))
    try:
        first = None
        print(f"{'members':>9} {'seconds':>8} {'us/member':>10} {'ratio':>6}")
        for count in sorted(args.counts):
            path = many_members(scratch / f"{count}.tar.gz", count)
            out = scratch / f"out-{count}"
            start = time.perf_counter()
            files = extract_file(path, out, max_total_bytes=byte_limit(Settings()))
            seconds = time.perf_counter() - start
            assert len(files) == count
            per_member = seconds / count * 1e6
            first = first or per_member
            print(f"{count:>9} {seconds:>8.2f} {per_member:>10.1f} {per_member / first:>6.2f}")
            shutil.rmtree(out)
            path.unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

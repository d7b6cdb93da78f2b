"""Print the pins of a constraints file for the packages this Python does not have yet.

    python docker/added-constraints.py constraints.txt > added.txt
    python -m pip install -c added.txt ...

The image installs caldp into the Python of the calibration base image, whose
calibration stack (numpy, astropy, calcos, drizzlepac, ...) is the base's own
and must stay as it is: pip would replace an installed package whose version
differs from a pin.  So only the packages caldp adds are pinned.
"""

import importlib.metadata
import re
import sys


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def added_pins(lines: list[str], installed: set[str]) -> list[str]:
    pins = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[=<>!~;\[ ]", line, maxsplit=1)[0]
        if canonical(name) not in installed:
            pins.append(line)
    return pins


def main(argv: list[str]) -> int:
    (path,) = argv
    installed = {canonical(d.metadata["Name"]) for d in importlib.metadata.distributions()}
    with open(path) as f:
        print("\n".join(added_pins(f.read().splitlines(), installed)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

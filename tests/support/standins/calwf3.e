#!/usr/bin/env python3
"""calwf3.e: STAND-IN for tests, never shipped.

Imitates hstcal's calwf3.e (WFC3 calibration): same command line, exit statuses,
product names and trailers; writes small valid FITS products and calibrates
nothing. See _standin.py for the environment variables that drive it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _standin import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("calwf3.e", sys.argv[1:]))

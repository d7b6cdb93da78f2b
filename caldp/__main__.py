import sys

from caldp.cli import main

sys.exit(main())

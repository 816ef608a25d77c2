"""`python -m spd` runs the command line."""

import sys

from spd.cli import main

sys.exit(main())

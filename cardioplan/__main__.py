"""``python -m cardioplan`` runs the command line."""

import sys

from cardioplan.cli import main

sys.exit(main())

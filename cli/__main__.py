"""`python -m rationalyst.cli ...`: the `rationalyst` command."""

import sys

from rationalyst.cli.main import main

sys.exit(main())

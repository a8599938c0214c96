"""``python -m agent``: the same as ``tally-agent``."""

import sys

from agent.cli import main

sys.exit(main())

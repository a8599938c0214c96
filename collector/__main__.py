"""``python -m collector`` is ``tally-collector``."""

from collector.cli import main

raise SystemExit(main())

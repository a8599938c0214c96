"""Tally collector: ingest, store, derive usage, rate, bill and serve."""

__version__ = "0.1.0"

"""Adapters from real meter protocols and device payloads into Tally agent readings."""

__version__ = "0.1.0"

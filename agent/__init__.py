"""Tally edge agent: read meters, buffer durably in SQLite, publish batches over MQTT."""

__version__ = "0.1.0"

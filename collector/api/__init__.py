"""HTTP API of the collector (FastAPI): ``create_app`` in ``app``, one router per area."""

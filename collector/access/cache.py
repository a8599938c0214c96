"""A short-lived, bounded cache of key lookups, so revocation takes effect within ``ttl_s``
without a database query on every request."""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.access.keys import Principal

__all__ = ["PrincipalCache"]


@dataclass(slots=True)
class PrincipalCache:
    """Maps a key digest to the principal found (or ``None``: unknown) at a monotonic time.

    ``now`` is passed in (seconds, monotonic); an entry older than ``ttl_s`` is a miss. At
    ``max_entries`` the cache is emptied rather than grown, so random keys cannot exhaust memory.
    """

    ttl_s: float = 5.0
    max_entries: int = 10_000
    _entries: dict[bytes, tuple[float, Principal | None]] = field(default_factory=dict)

    def get(self, digest: bytes, now: float) -> tuple[bool, Principal | None]:
        """``(hit, principal)``."""
        found = self._entries.get(digest)
        if found is None or now - found[0] >= self.ttl_s:
            return False, None
        return True, found[1]

    def put(self, digest: bytes, principal: Principal | None, now: float) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = (now, principal)

    def forget(self, key_id: str) -> None:
        """Drop every entry of ``key_id`` (after a revocation through this process)."""
        for digest, (_, p) in list(self._entries.items()):
            if p is not None and p.key_id == key_id:
                del self._entries[digest]

    def clear(self) -> None:
        self._entries.clear()

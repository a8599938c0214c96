"""Who is calling: staff keys from the database (with a short cache), configured tokens, or the
open loopback API.

The staff API is *enforced* (every staff route needs a key) when staff tokens are configured,
when ``api.require_staff_key`` is set, or as soon as any staff key has been created in the
database. Otherwise (a development collector on 127.0.0.1) a call without credentials acts as
``open`` with the admin role; a call *with* credentials is always checked.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from collector.access import Principal, PrincipalCache, Role, key_digest, parse_key
from collector.errors import InvalidKey
from collector.storage import access_store
from collector.storage.database import Pool, translate_errors

from .staff_auth import hash_token

__all__ = ["BadCredentials", "StaffGate"]

OPEN = Principal(actor="open", role=Role.ADMIN)


class BadCredentials(Exception):
    """Credentials were presented but are unknown, revoked, expired or malformed."""


def _wall() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class StaffGate:
    """Authenticates ``Authorization`` headers; ``cache_s`` bounds how long a revoked key may
    still be accepted by this process (revocations through this process apply at once)."""

    pool: Pool
    token_digests: frozenset[str] = frozenset()
    require_key: bool = False
    cache_s: float = 5.0
    clock: Callable[[], datetime] = _wall
    monotonic: Callable[[], float] = time.monotonic
    cache: PrincipalCache = field(init=False)
    _enforced_at: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.cache = PrincipalCache(ttl_s=self.cache_s)

    @classmethod
    def create(
        cls, pool: Pool, tokens: Iterable[str] = (), *, require_key: bool = False,
        cache_s: float = 5.0,
    ) -> StaffGate:
        digests = frozenset(t if t.startswith("sha256:") else hash_token(t) for t in tokens)
        return cls(pool, digests, require_key, cache_s)

    def enforced(self) -> bool:
        """Whether staff routes need credentials (checked in the database at most every
        ``cache_s`` until a key exists; from then on, for the life of the process)."""
        if self.require_key or self.token_digests:
            return True
        now = self.monotonic()
        with self._lock:
            if self._enforced_at is not None and (
                self._enforced_at < 0 or now - self._enforced_at < self.cache_s
            ):
                return self._enforced_at < 0
        with translate_errors("check staff keys"), self.pool.connection() as conn:
            exists = access_store.any_keys(conn)
        with self._lock:
            self._enforced_at = -1.0 if exists else now
        return exists

    def key_created(self) -> None:
        """A key was just created: enforce from now on."""
        with self._lock:
            self._enforced_at = -1.0

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The caller, ``None`` without credentials; ``BadCredentials`` for bad ones."""
        if not authorization:
            return None
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise BadCredentials("use 'Authorization: Bearer <staff key>'")
        try:
            parse_key(credential)
        except InvalidKey:
            return self._token(credential)
        return self._key(credential)

    def _token(self, credential: str) -> Principal:
        digest = hash_token(credential)
        for d in self.token_digests:
            if hmac.compare_digest(digest, d):
                return Principal(actor=f"token:{d.removeprefix('sha256:')[:8]}", role=Role.ADMIN)
        raise BadCredentials("unknown staff token")

    def _key(self, credential: str) -> Principal:
        digest = key_digest(credential)
        now_m, now = self.monotonic(), self.clock()
        with self._lock:
            hit, who = self.cache.get(digest, now_m)
        if not hit:
            with translate_errors("check staff key"), self.pool.connection() as conn:
                who = access_store.principal_for_digest(conn, digest, now)
            with self._lock:
                self.cache.put(digest, who, now_m)
        if who is None or not who.valid_at(now):
            raise BadCredentials("unknown, revoked or expired staff key")
        return who

    def resolve(self, authorization: str | None) -> Principal | None:
        """The caller of a staff route: ``OPEN`` when nothing is presented and the API is not
        enforced; ``None`` when credentials are required but missing."""
        who = self.authenticate(authorization)
        if who is None and not self.enforced():
            return OPEN
        return who

    def revoked(self, key_id: str) -> None:
        with self._lock:
            self.cache.forget(key_id)

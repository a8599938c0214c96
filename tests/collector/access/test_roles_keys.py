"""Roles, key format and the lookup cache (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.access import Principal, PrincipalCache, Role, issue_key, key_digest, parse_key
from collector.access.audit import outcome_of
from collector.errors import InvalidKey

NOW = datetime(2026, 3, 1, tzinfo=UTC)

GRANTS = {  # held → required roles it may call
    Role.ADMIN: set(Role),
    Role.BILLING: {Role.BILLING, Role.READ_ONLY},
    Role.TECHNICIAN: {Role.TECHNICIAN, Role.READ_ONLY},
    Role.READ_ONLY: {Role.READ_ONLY},
}


@pytest.mark.parametrize("held", list(Role))
@pytest.mark.parametrize("required", list(Role))
def test_role_grants_table(held: Role, required: Role) -> None:
    """Admin calls everything, every role reads, billing and technician only their own."""
    assert held.grants(required) is (required in GRANTS[held])


def test_issued_key_parses_and_hashes() -> None:
    """A key carries its public id; the stored digest is SHA-256 of the whole key."""
    issued = issue_key(role=Role.BILLING, name="ops", now=NOW, created_by="t")
    assert parse_key(issued.secret) == issued.key.key_id
    assert issued.digest == key_digest(issued.secret)
    assert len(issued.digest) == 32
    assert issued.secret not in repr(issued.key)
    other = issue_key(role=Role.BILLING, name="ops", now=NOW, created_by="t")
    assert other.secret != issued.secret
    assert other.key.key_id != issued.key.key_id


@pytest.mark.parametrize("text", ["", "tally_", "Bearer x", "tally_0123456789ab_short",
                                  "tally_0123456789AB_" + "a" * 43, "x" * 1000])
def test_malformed_keys_are_refused(text: str) -> None:
    with pytest.raises(InvalidKey):
        parse_key(text)


def test_issue_key_validates() -> None:
    """Expiry in the past, naive times, empty or NUL names are refused."""
    with pytest.raises(InvalidKey, match="future"):
        issue_key(role=Role.ADMIN, name="a", now=NOW, created_by="t", expires_at=NOW)
    with pytest.raises(InvalidKey):
        issue_key(role=Role.ADMIN, name="a", now=NOW.replace(tzinfo=None), created_by="t")
    for name in ("", "  ", "a\x00b", "x" * 201):
        with pytest.raises(InvalidKey):
            issue_key(role=Role.ADMIN, name=name, now=NOW, created_by="t")


def test_key_active_window() -> None:
    """A key is active until it expires or is revoked."""
    k = issue_key(role=Role.ADMIN, name="a", now=NOW, created_by="t",
                  expires_at=NOW + timedelta(days=1)).key
    assert k.active(NOW)
    assert not k.active(NOW + timedelta(days=1))


def test_cache_expires_and_forgets() -> None:
    """Entries live ``ttl_s``; ``forget`` drops a revoked key at once; size is bounded."""
    cache = PrincipalCache(ttl_s=5, max_entries=3)
    p = Principal("key:abc", Role.ADMIN, "abc")
    cache.put(b"d", p, now=100.0)
    assert cache.get(b"d", 104.9) == (True, p)
    assert cache.get(b"d", 105.0) == (False, None)
    cache.put(b"d", p, now=200.0)
    cache.forget("abc")
    assert cache.get(b"d", 200.0) == (False, None)
    for i in range(10):
        cache.put(bytes([i]), None, now=300.0)
    assert len(cache._entries) <= 3


@pytest.mark.parametrize(("status", "outcome"), [(200, "ok"), (201, "ok"), (401, "refused"),
                                                  (403, "refused"), (422, "rejected"),
                                                  (413, "rejected"), (500, "failed")])
def test_outcome_of_status(status: int, outcome: str) -> None:
    assert outcome_of(status) == outcome

"""Benchmark: the cost of staff authentication per request (key lookups with the short cache).

    .venv/bin/python bench/staff_auth.py [--database-url postgresql://postgres@127.0.0.1/postgres]
                                         [--requests 3000]

Creates a scratch database, one key per role, and measures (1) ``StaffGate.resolve`` with the
cache (``key_cache_s=5``: the default) against the naive baseline of one database lookup per
request (``key_cache_s=0``), and (2) whole HTTP requests to ``GET /staff/me`` through the app
(middleware + role dependency) in both settings.
"""

from __future__ import annotations

import argparse
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
from fastapi.testclient import TestClient

from collector.access import Role, issue_key
from collector.api.access_gate import StaffGate
from collector.api.app import create_app
from collector.storage import access_store
from collector.storage.database import Pool, open_pool
from collector.storage.migrate import migrate


def _rate(n: int, fn: object) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()  # type: ignore[operator]
    return n / (time.perf_counter() - t0)


def _keys(pool: Pool) -> list[str]:
    from datetime import UTC, datetime  # noqa: PLC0415

    out = []
    with pool.connection() as conn:
        for role in Role:
            issued = issue_key(role=role, name=f"bench {role}", now=datetime.now(UTC),
                               created_by="bench")
            access_store.add_key(conn, issued)
            out.append(issued.secret)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()
    name = f"tally_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(args.database_url)._replace(path="/" + name))
    try:
        migrate(url, use_timescale=False)
        pool = open_pool(url, min_size=1, max_size=2)
        pool.wait(10)
        secrets = _keys(pool)
        n = args.requests
        headers = [f"Bearer {s}" for s in secrets]
        for cache_s, label in ((0.0, "naive: database lookup per request"),
                               (5.0, "cached (key_cache_s=5)")):
            gate = StaffGate.create(pool, require_key=True, cache_s=cache_s)
            i = iter(range(10**9))
            rate = _rate(n, lambda g=gate, it=i: g.resolve(headers[next(it) % len(headers)]))
            print(f"resolve, {label}: {rate:,.0f} lookups/s")
        for cache_s, label in ((0.0, "naive: database lookup per request"),
                               (5.0, "cached (key_cache_s=5)")):
            client = TestClient(create_app(pool, require_staff_key=True, key_cache_s=cache_s))
            hdr = [{"Authorization": h} for h in headers]
            j = iter(range(10**9))
            http = _rate(n // 3, lambda c=client, h=hdr, it=j: c.get(
                "/staff/me", headers=h[next(it) % len(h)]))
            print(f"GET /staff/me, {label}: {http:,.0f} requests/s")
        gate = StaffGate.create(pool, require_key=True, cache_s=5.0)
        cached = _rate(n * 10, lambda: gate.resolve(headers[0]))
        print(f"RESULT staff key check, cached: {cached:,.0f} lookups/s "
              f"({1e6 / cached:.1f} µs per request)")
        pool.close()
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()

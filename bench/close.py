"""Benchmark: close a month for many customers end to end (usage → rating → invoices stored).

Setup (not timed): a fresh database, N customers (90% Europe/Amsterdam, 10% spread over far
zones), one meter each on a TOU + graduated tiers + demand + standing-charge plan, and a month of
15-minute interval usage per meter bulk-loaded straight into ``usage_15m`` with binary COPY
and packed per UTC day into ``usage_15m_daily`` (what the usage engine maintains next to it and
billing reads in bulk; the readings → usage derivation is benchmarked by bench/usage_backfill.py,
loading usage directly keeps this benchmark about billing). Timed: ``close_period`` (drafts:
usage load, rating, invoice + line inserts) and ``finalize_period`` (gapless numbering). No PDFs.

Baseline: the same drafting done one customer per transaction (one usage query, one engine call
and one insert round per customer) on a sample, rolled back, extrapolated to N.

    python bench/close.py                       # 500 customers (quick)
    python bench/close.py --customers 10000     # the full-size run (≈29.8 M intervals)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
import psycopg_pool
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.billing import accounts
from collector.billing.close import (
    CloseConfig,
    PlanCache,
    close_period,
    draft_chunk,
    finalize_period,
)
from collector.billing.model import Address
from collector.billing.periods import PeriodKey, period_for
from collector.storage.migrate import migrate
from collector.storage.usage_fleet import apply_stage_deltas

PLAN = {
    "format": "tally.plan/v1",
    "id": "bench-tou",
    "version": 1,
    "currency": "EUR",
    "time_zone": "Europe/Amsterdam",
    "schedule": {
        "seasons": {
            "all": {
                "months": list(range(1, 13)),
                "weekday": {"0-7": "offpeak", "7-23": "peak", "23-24": "offpeak"},
                "weekend": {"0-24": "offpeak"},
            }
        }
    },
    "charges": [
        {
            "type": "time_of_use",
            "id": "energy",
            "unit": "kWh",
            "periods": {
                "peak": {
                    "tiers": [
                        {"from": "0", "to": "200", "price": "0.31"},
                        {"from": "200", "price": "0.29"},
                    ]
                },
                "offpeak": {
                    "tiers": [
                        {"from": "0", "to": "100", "price": "0.10"},
                        {"from": "100", "price": "0.0875"},
                    ]
                },
            },
        },
        {"type": "demand", "id": "demand", "unit": "kW", "price": "4.37"},
        {"type": "recurring", "id": "standing", "amount": "12.50"},
    ],
}
FAR_ZONES = ["Pacific/Auckland", "Pacific/Kiritimati", "America/Los_Angeles", "Asia/Kolkata"]
KEY = PeriodKey(2026, 3)
PG_EPOCH = 946_684_800
ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l1", ">i4"),
        ("sid", ">i8"),
        ("l2", ">i4"),
        ("bucket", ">i8"),
        ("l3", ">i4"),
        ("q", ">f8"),
        ("l4", ">i4"),
        ("e", ">f8"),
        ("l5", ">i4"),
        ("rc", ">i4"),
        ("l6", ">i4"),
        ("upd", ">i8"),
    ]
)
DAILY = np.dtype(
    [
        ("n", ">i2"),
        ("l1", ">i4"),
        ("sid", ">i8"),
        ("l2", ">i4"),
        ("day", ">i8"),
        ("l3", ">i4"),
        ("q", ">f8", (96,)),
        ("l4", ">i4"),
        ("e", ">f8", (96,)),
        ("l5", ">i4"),
        ("rc", ">i4", (96,)),
    ]
)
LOADED_AT = int(datetime(2026, 4, 3, tzinfo=UTC).timestamp())  # usage known before the close
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def setup(
    url: str, n: int, rng: np.random.Generator, *, daily_only: bool = False, fleet: bool = False
) -> int:
    """Customers, meters, subscriptions and usage; returns the number of usage intervals.

    ``daily_only``: load only the packed ``usage_15m_daily`` the close reads, not the per-interval
    ``usage_15m`` rows (only the late-data and stale-draft checks look at those, by index).
    ``fleet``: also keep the fleet rollup ``usage_fleet_15m``, the way the usage refresh and the
    backfill do: each batch is staged first and its deltas applied before it is written."""
    with psycopg.connect(url, autocommit=True) as conn:
        _, v = accounts.create_plan(conn, "bench", "Bench TOU", PLAN)
        zones = [
            FAR_ZONES[i % len(FAR_ZONES)] if i % 10 == 9 else "Europe/Amsterdam" for i in range(n)
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO customers (name, address, currency, time_zone, tax_rate, issuer)"
                " VALUES (%s, %s, 'EUR', %s, 0.21, 'bench')",
                [
                    (
                        f"Customer {i}",
                        psycopg.types.json.Jsonb(Address("Street 1", "Town", "NL").to_json()),
                        zones[i],
                    )
                    for i in range(n)
                ],
            )
            cur.executemany(
                "INSERT INTO series (device_id, meter, metric, unit, kind)"
                " VALUES (%s, 'main', 'energy', 'kWh', 'cumulative')",
                [(f"dev-{i:06d}",) for i in range(n)],
            )
        cids = [r[0] for r in conn.execute("SELECT customer_id FROM customers ORDER BY 1")]
        sids = [r[0] for r in conn.execute("SELECT series_id FROM series ORDER BY 1")]
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY subscriptions (customer_id, series_id, plan_version_id, valid_from) FROM"
                " STDIN"
            ) as cp,
        ):
            for c, s in zip(cids, sids, strict=True):
                cp.write_row((c, s, v.plan_version_id, datetime(2025, 1, 1, tzinfo=UTC)))
        total = 0
        for lo in range(0, n, 250):
            parts = []
            for i in range(lo, min(n, lo + 250)):
                p = period_for(KEY, zones[i])
                b = np.arange(int(p.start.timestamp()), int(p.end.timestamp()), 900)
                r = np.empty(b.size, dtype=ROW)
                r["n"], r["l1"], r["l2"], r["l3"], r["l4"], r["l5"], r["l6"] = 6, 8, 8, 8, 8, 4, 8
                r["sid"] = sids[i]
                r["bucket"] = (b - PG_EPOCH) * 1_000_000
                r["q"] = rng.gamma(2.0, 0.15, b.size).round(3)
                r["e"] = 0.0
                r["rc"] = 1
                r["upd"] = (LOADED_AT - PG_EPOCH) * 1_000_000
                parts.append(r)
            rows = np.concatenate(parts).astype(ROW)  # concatenate drops the byte order
            daily = pack_daily(rows)
            if fleet:
                _stage_fleet(conn, rows)
            if not daily_only:
                with (
                    conn.cursor() as cur,
                    cur.copy(
                        "COPY usage_15m (series_id, bucket, quantity, estimated, reading_count,"
                        " updated_at)"
                        " FROM STDIN (FORMAT BINARY)"
                    ) as cp,
                ):
                    cp.write(HEADER + rows.tobytes() + b"\xff\xff")
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY usage_15m_daily (series_id, day, quantity, estimated, reading_count)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as cp,
            ):
                cp.write(HEADER + daily.tobytes() + b"\xff\xff")
            total += rows.size
        conn.execute("ANALYZE")
    return total


def _stage_fleet(conn: psycopg.Connection[tuple[object, ...]], rows: np.ndarray) -> None:
    """Add a batch of usage rows to the fleet rollup through the writers' stage (rows not yet
    in ``usage_15m``: their deltas are their values)."""
    with conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS usage_stage (series_id bigint, bucket timestamptz,"
            " quantity float8, estimated float8, reading_count int, updated_at timestamptz)"
            " ON COMMIT DELETE ROWS"
        )
        with conn.cursor() as cur, cur.copy("COPY usage_stage FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(HEADER + rows.tobytes() + b"\xff\xff")
        conn.execute("ANALYZE usage_stage")
        apply_stage_deltas(conn)


def pack_daily(rows: np.ndarray) -> np.ndarray:
    """The same usage packed per series and UTC day (96 quarter hours), as the usage engine
    keeps it in ``usage_15m_daily`` (0 where there is no interval)."""
    sid = rows["sid"].astype(np.int64)
    t = rows["bucket"].astype(np.int64) // 1_000_000  # seconds since 2000-01-01 (UTC)
    day, slot = t // 86_400, (t % 86_400) // 900
    keys, inverse = np.unique(sid * 1_000_000 + day, return_inverse=True)
    out = np.zeros(keys.size, dtype=DAILY)
    out["n"], out["l1"], out["l2"], out["l3"], out["l4"], out["l5"] = 5, 8, 8, 768, 768, 384
    out["sid"] = keys // 1_000_000
    out["day"] = (keys % 1_000_000) * 86_400 * 1_000_000
    q = np.zeros((keys.size, 96))
    e = np.zeros((keys.size, 96))
    rc = np.zeros((keys.size, 96), dtype=np.int32)
    q[inverse, slot] = rows["q"]
    e[inverse, slot] = rows["e"]
    rc[inverse, slot] = rows["rc"]
    out["q"], out["e"], out["rc"] = q, e, rc
    return out


# Everything a close and a finalize write; the usage, customers, meters and plans stay.
BILLING_TABLES = (
    "invoice_lines",
    "invoice_demand_peaks",
    "credit_note_lines",
    "credit_notes",
    "credit_note_sequences",
    "wallet_uses",
    "wallet_applications",
    "invoices",
    "invoice_number_sequences",
    "billing_runs",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_events",
)


def reset_billing(url: str, customers: int) -> int:
    """Empty what an earlier close wrote in a kept database (the immutability and truncate
    triggers are bypassed for this one transaction); returns the number of usage intervals."""
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT count(*) FROM customers").fetchone()
        if found is None or found[0] != customers:
            raise SystemExit(f"the kept database has {found} customers, not {customers}")
        conn.execute("SET LOCAL session_replication_role = replica")  # no user triggers
        conn.execute(
            sql.SQL("TRUNCATE {} CASCADE").format(
                sql.SQL(", ").join(map(sql.Identifier, BILLING_TABLES))
            )
        )
        zones = conn.execute("SELECT time_zone, count(*) FROM customers GROUP BY 1").fetchall()
        conn.commit()
        conn.autocommit = True
        conn.execute(  # the emptied tables only: the usage is as it was loaded
            sql.SQL("VACUUM ANALYZE {}").format(
                sql.SQL(", ").join(map(sql.Identifier, BILLING_TABLES))
            )
        )
    spans = {tz: period_for(KEY, tz) for tz, _ in zones}
    return sum((spans[tz].end - spans[tz].start) // timedelta(minutes=15) * n for tz, n in zones)


def client_cpu() -> float:
    """CPU seconds of this process and of its finished children (the rating processes of a
    draft are waited for when it returns)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def naive(url: str, sample: int, now: datetime) -> float:
    """Seconds per customer drafting one customer per transaction (rolled back)."""
    plans = PlanCache()
    cfg = CloseConfig(chunk_size=1)
    with psycopg.connect(url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT customer_id FROM customers ORDER BY customer_id LIMIT %s", (sample,)
            )
        ]
        conn.rollback()
        t0 = time.perf_counter()
        for cid in ids:
            with conn.transaction(force_rollback=True):
                draft_chunk(conn, KEY, [cid], now=now, config=cfg, plans=plans)
        return (time.perf_counter() - t0) / max(1, len(ids))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--baseline-sample", type=int, default=50)
    ap.add_argument(
        "--processes",
        type=int,
        default=0,
        help="rating processes of the draft (CloseConfig.processes; default 0: threads only)",
    )
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument(
        "--keep-db",
        metavar="NAME",
        help="load into a database of this name and keep it (for --reuse-db; drop it when done:"
        " DROP DATABASE NAME)",
    )
    ap.add_argument(
        "--reuse-db",
        metavar="NAME",
        help="skip the setup: close again in a database kept by --keep-db, after removing its"
        " invoices, runs and numbering (the usage, customers and plans stay)",
    )
    ap.add_argument(
        "--daily-only",
        action="store_true",
        help="load only usage_15m_daily (what the close reads), not usage_15m: makes the setup"
        " of 100,000 customers fit (about 6 GB instead of 36 GB)",
    )
    ap.add_argument(
        "--setup-only",
        action="store_true",
        help="with --keep-db: load the database and stop (the setup, outside any timing)",
    )
    args = ap.parse_args()
    if args.keep_db and args.reuse_db:
        raise SystemExit("--keep-db and --reuse-db exclude each other")
    if args.setup_only and not args.keep_db:
        raise SystemExit("--setup-only needs --keep-db NAME")
    name = args.reuse_db or args.keep_db or f"tally_bench_close_{uuid.uuid4().hex[:8]}"
    keep = args.keep or bool(args.keep_db or args.reuse_db)
    url = with_db(args.database_url, name)
    if not args.reuse_db:
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        if args.reuse_db:
            migrate(url)  # migrations added since the database was kept
            rows = reset_billing(url, args.customers)
            print(f"setup: reused {name}: {args.customers} customers, {rows:,} usage intervals")
        else:
            migrate(url)
            t0 = time.perf_counter()
            rows = setup(url, args.customers, np.random.default_rng(1), daily_only=args.daily_only)
            print(
                f"setup: {args.customers} customers, {rows:,} usage intervals (15 min)"
                f" bulk-loaded with binary COPY in {time.perf_counter() - t0:.1f} s"
                + (" (usage_15m_daily only)" if args.daily_only else "")
            )
            if args.setup_only:
                return 0
        now = datetime(2026, 4, 10, tzinfo=UTC)
        sample = min(args.baseline_sample, args.customers)
        per = naive(url, sample, now)  # before the real close: rolled back, leaves nothing
        if os.environ.get("BENCH_PROFILE"):
            import cProfile  # noqa: PLC0415
            import pstats  # noqa: PLC0415

            prof = cProfile.Profile()
            prof.enable()
        cfg = CloseConfig(
            chunk_size=args.chunk_size, processes=args.processes, grace=timedelta(days=3)
        )
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[tuple[object, ...]]] = (
            psycopg_pool.ConnectionPool(url, min_size=1, max_size=3, open=True)
        )
        try:
            c1, t1 = client_cpu(), time.perf_counter()
            run = close_period(pool, KEY, now, cfg)
            c2, t2 = client_cpu(), time.perf_counter()
            fin = finalize_period(pool, KEY, now, cfg)
            c3, t3 = client_cpu(), time.perf_counter()
        finally:
            pool.close()
        if os.environ.get("BENCH_PROFILE"):
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        with psycopg.connect(url) as conn:
            tot = conn.execute(
                "SELECT count(*), sum(total) FROM invoices WHERE status='final'"
            ).fetchone()
        if tot is None or tot[0] != args.customers:
            raise SystemExit(f"expected {args.customers} final invoices, found {tot}")
        close_s, fin_s, all_s = t2 - t1, t3 - t2, t3 - t1
        print(
            f"close (draft) : {close_s:7.2f} s  {run.invoices_written} invoices,"
            f" {run.lines_written} lines"
        )
        print(f"finalize      : {fin_s:7.2f} s  {fin.invoices_written} numbered")
        print(f"rating        : {args.processes or 'no'} rating processes (--processes)")
        print(
            f"client CPU    : {c2 - c1:7.2f} s in the draft ({(c2 - c1) / close_s:.0%} of its wall"
            f" time), {c3 - c2:.2f} s in the finalize ({(c3 - c2) / fin_s:.0%}); with the"
            " rating processes"
        )
        print(
            f"end to end    : {all_s:7.2f} s  {args.customers / all_s:,.0f} invoices/s,"
            f" {rows / all_s:,.0f} readings/s (15-min usage intervals);"
            f" billed total {Decimal(tot[1]):,} EUR"
        )
        print(
            f"naive baseline: {per * 1000:.1f} ms/customer (one customer per transaction,"
            f" sample {sample}) -> {per * args.customers:.1f} s"
            f" for {args.customers} customers ({per * args.customers / close_s:.1f}x the"
            f" chunked draft)"
        )
        print(
            f"target: <= 60 s for 100,000 customers; extrapolated from this run:"
            f" {all_s * 100_000 / args.customers:.1f} s"
        )
        print(
            f"RESULT name=close figure={args.customers / close_s:.0f} invoices/s"
            f" baseline={1 / per:.0f} invoices/s ratio={per * args.customers / close_s:.1f}x"
        )
    finally:
        if not keep:
            with psycopg.connect(args.database_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

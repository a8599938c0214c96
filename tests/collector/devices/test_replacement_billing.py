"""Replacing a device: the meter's series continues on the new device, so usage (and the
subscriptions billing that series) runs across the swap with no gap and no double count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from fastapi.testclient import TestClient

from agent.protocol import Batch, Kind, Series, encode_batch, readings_topic
from collector.ingest.messages import DecodedBatch, FlushPlan
from collector.storage.database import Pool
from collector.storage.ingest_store import ReadingStore
from collector.storage.usage_store import refresh_usage

from .api_support import SECRET
from .api_support import enroll_code_doc as _enroll

T0 = datetime(2026, 2, 1, tzinfo=UTC)
T0_MS = round(T0.timestamp() * 1000)


def _batch(device: str, seq: int, minutes: range, kwh_per_min: float) -> Batch:
    ts = np.array([T0_MS + m * 60_000 for m in minutes], dtype=np.int64)
    vals = np.array([1000.0 + m * kwh_per_min for m in minutes], dtype=np.float64)
    return Batch(device, seq, int(ts[-1]), "test",
                 (Series("main", "energy", "kWh", Kind.CUMULATIVE, ts, vals),))


def _write(pool: Pool, batch: Batch) -> None:
    ReadingStore(pool, registered_only=True).write(FlushPlan((DecodedBatch(
        batch, readings_topic(batch.device), encode_batch(batch), batch.sent_ms),)))


def test_replacement_continues_the_series_without_gap_or_double_count(
    client: TestClient, pool: Pool, pg_url: str
) -> None:
    code = str(_enroll(client)["code"])
    old = client.post("/enroll", json={"code": code, "secret": SECRET}).json()["device_id"]
    _write(pool, _batch(old, 1, range(0, 60), 0.5))  # 00:00-00:59, the register at 0.5 kWh/min
    with psycopg.connect(pg_url) as conn:
        before = conn.execute("SELECT series_id FROM series").fetchall()
    rep = str(_enroll(client, meters=[], purpose="replace", target_device=old)["code"])
    new = client.post("/enroll", json={"code": rep, "secret": SECRET + "-new"}).json()
    new_id = new["device_id"]
    # the old gateway died at 00:59; the new one reads the same register from 01:10 on
    _write(pool, _batch(new_id, 1, range(70, 120), 0.5))
    # a late batch of the old gateway is not billed: it is dead-lettered
    _write(pool, _batch(old, 2, range(60, 70), 0.5))
    with psycopg.connect(pg_url) as conn:
        series = conn.execute("SELECT series_id, device_id FROM series").fetchall()
        assert [d for _, d in series] == [new_id]
        # subscriptions bill by series_id: the same id before and after the swap
        assert [sid for sid, _ in series] == [sid for (sid,) in before]
        refresh_usage(conn, T0 + timedelta(days=1))
        total = conn.execute("SELECT sum(quantity), count(*) FROM usage_15m").fetchone()
        letters = conn.execute("SELECT reason FROM dead_letters").fetchall()
    assert total is not None
    # 00:00 → 01:59 at 0.5 kWh/min: 119 min × 0.5 = 59.5 kWh, the swap gap included once
    assert abs(float(total[0]) - 59.5) < 1e-6
    assert len(letters) == 1
    assert "decommissioned" in letters[0][0]

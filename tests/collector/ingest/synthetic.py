"""Synthetic batches with known content, a QoS 1 publisher, and checks of what was stored."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from agent.protocol import Batch, Kind, Series, encode_batch, readings_topic

BASE_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
Totals = dict[tuple[str, str, str], tuple[int, float]]


def make_batch(device: str, seq: int, n: int = 10, *, meters: int = 1) -> Batch:
    """Batch ``seq`` of ``device``: ``n`` readings per meter, distinct timestamps per seq."""
    series = []
    for m in range(meters):
        ts = BASE_MS + (seq * n + np.arange(n, dtype=np.int64)) * 1000
        vals = seq * 1000.0 + np.arange(n, dtype=np.float64) * 0.25 + m
        series.append(Series(f"m{m}", "energy", "kWh", Kind.CUMULATIVE, ts, vals))
    return Batch(device, seq, BASE_MS + seq, "test", tuple(series))


def expected_totals(batches: Iterable[Batch]) -> Totals:
    """Count and sum per (device, meter, metric) of each distinct (device, seq)."""
    seen: dict[tuple[str, int], Batch] = {}
    for b in batches:
        seen.setdefault((b.device, b.seq), b)
    out: dict[tuple[str, str, str], tuple[int, float]] = {}
    for b in seen.values():
        for s in b.series:
            key = (b.device, s.meter, s.metric)
            c, t = out.get(key, (0, 0.0))
            out[key] = (c + len(s), t + sum(s.values))
    return out


def stored_totals(pg_url: str) -> Totals:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT s.device_id, s.meter, s.metric, count(*), sum(r.value) FROM readings r"
            " JOIN series s USING (series_id) GROUP BY 1, 2, 3"
        ).fetchall()
    return {(d, m, q): (int(c), float(t)) for d, m, q, c, t in rows}


def duplicate_rows(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM (SELECT series_id, ts FROM readings"
            " GROUP BY 1, 2 HAVING count(*) > 1) d"
        ).fetchone()
    assert row is not None
    return int(row[0])


def assert_totals_equal(stored: Totals, expected: Totals) -> None:
    assert stored.keys() == expected.keys()
    for key, (count, total) in expected.items():
        assert stored[key][0] == count, key
        assert abs(stored[key][1] - total) < 1e-6 * max(1.0, abs(total)), key


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 30.0, interval_s: float = 0.1
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False


class Publisher:
    """A QoS 1 publisher that retries until the broker acknowledged every message."""

    def __init__(self, url: str, client_id: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=True)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect_async(self._host, self._port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1, *, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            info = self.client.publish(topic, payload, qos=qos)
            try:
                info.wait_for_publish(timeout=min(5.0, max(0.1, deadline - time.monotonic())))
                if info.is_published():
                    return
            except (RuntimeError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not publish to {topic}")
            time.sleep(0.2)

    def publish_batch(self, batch: Batch) -> None:
        self.publish(readings_topic(batch.device), encode_batch(batch))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def drop_session(url: str, client_id: str) -> None:
    """Remove a persistent session from the broker (connect once with clean_session)."""
    parts = urlsplit(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    done = threading.Event()
    c.on_connect = lambda *a: done.set()
    try:
        c.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        c.loop_start()
        done.wait(5)
        c.disconnect()
        c.loop_stop()
    except OSError:
        pass


def count(pg_url: str, sql: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def seq_counts(pg_url: str) -> Counter[str]:
    with psycopg.connect(pg_url) as conn:
        return Counter(d for (d,) in conn.execute("SELECT device_id FROM batches"))


class BackgroundPublisher:
    """Publishes batches ``first..last`` of a device in a thread, re-sending every 7th one."""

    def __init__(self, pub: Publisher, device: str, seqs: range, *, n: int = 50,
                 pause_s: float = 0.002) -> None:
        self.batches = [make_batch(device, s, n) for s in seqs]
        self._pub = pub
        self._pause = pause_s
        self.sent = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for i, b in enumerate(self.batches):
                self._pub.publish_batch(b)
                if i % 7 == 0:
                    self._pub.publish_batch(b)  # an agent re-sending after a lost PUBACK
                self.sent += 1
                time.sleep(self._pause)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def join(self, timeout_s: float = 120) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "publisher did not finish"
        assert self.error is None, self.error

"""The chaos runner's books: every meter's log against ``readings`` and ``usage_15m``, checked
incrementally so that a trial late in a long run costs what an early one does.

A meter of ``tests/faults/meter_agent`` counts 1, 2, 3, … and stamps value ``n`` at
``T_BASE_MS + n`` seconds, one unit per second of register time. So, per meter:

* readings: values ``1..N`` logged so far must each be stored exactly once, except a value an
  agent held when it was killed -9 (logged, never committed to its buffer: never taken; the
  register still holds it). Each check covers the new window ``(checked, N]`` (all there, no copy)
  and counts every stored row up to ``N``, so a copy of an old value arriving later is caught too.
* usage: over the 15-minute buckets that are fully derived (before the oldest ``usage_dirty``
  range of the series, and before ``N``), the derived quantity must be exactly what the register
  says: ``value(B) - first value``, 900 per full bucket, nothing estimated. A reading counted
  twice, or a range derived twice, shows here as usage billed twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from tests.faults.meter_agent import T_BASE_MS

_T_BASE = datetime.fromtimestamp(T_BASE_MS / 1000, UTC)
_BUCKET = timedelta(minutes=15)
_PER_BUCKET = 900.0  # one unit per second of register time


def stamp(n: int) -> datetime:
    return _T_BASE + timedelta(seconds=n)


class MeterLog:
    """A meter's log read incrementally: the count of complete lines (= its last value)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.count = 0

    def refresh(self) -> int:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
            complete = data.rfind(b"\n") + 1
            self.count += data[:complete].count(b"\n")
            self._offset += complete
        return self.count


@dataclass(slots=True)
class _Meter:
    device: str
    meter: str
    log: MeterLog
    series_id: int | None = None
    checked: int = 0  # values 1..checked verified
    rows: int = 0  # rows of taken values at or before stamp(checked) when last verified
    nt_copies: int = 0  # extra copies of never-taken values seen so far
    never_taken: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Check:
    readings: int  # values logged so far, all meters
    lost: int
    duplicated: int
    usage_mismatches: int  # series whose derived usage differs from what the register says
    usage_checked_to: int  # register units of usage compared, all meters
    notes: tuple[str, ...]


class Ledger:
    def __init__(self, db: str, devices: dict[str, Path], meters: int) -> None:
        self.db = db
        self._meters = [_Meter(d, f"m{m}", MeterLog(work / f"m{m}.log"))
                        for d, work in devices.items() for m in range(meters)]

    def killed(self, device: str) -> None:
        """An agent of ``device`` was killed -9 (and is dead): its meters' last values may
        never have been taken."""
        for m in self._meters:
            # a value at or below the checked mark is already stored (or counted lost)
            if m.device == device and m.log.refresh() > m.checked:
                m.never_taken.add(m.log.count)

    def series_ids(self) -> list[int]:
        return [m.series_id for m in self._meters if m.series_id is not None]

    def logged_min(self) -> int:
        """The fewest values any meter has logged so far."""
        return min(m.log.refresh() for m in self._meters)

    def check(self, timeout_s: float = 60.0) -> Check:
        """Wait until every value logged so far is stored (or ``timeout_s``), then count."""
        targets = [m.log.refresh() for m in self._meters]
        pairs = list(zip(self._meters, targets, strict=True))
        deadline = time.monotonic() + timeout_s
        with psycopg.connect(self.db, autocommit=True) as conn:
            self._series(conn)
            while True:
                missing = sum(self._missing(conn, m, n) for m, n in pairs)
                if missing == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            lost, dup, notes = 0, 0, []
            for m, n in pairs:
                got_lost, got_dup = self._settle(conn, m, n)
                lost += got_lost
                dup += got_dup
                if got_lost or got_dup:
                    notes.append(f"{m.device}/{m.meter} up to {n}: lost {got_lost},"
                                 f" duplicated {got_dup}")
            bad, units = 0, 0
            for m in self._meters:
                note, compared = self._usage(conn, m)
                units += compared
                if note:
                    bad += 1
                    notes.append(note)
        return Check(sum(targets), lost, dup, bad, units, tuple(notes))

    def _series(self, conn: psycopg.Connection) -> None:
        todo = [m for m in self._meters if m.series_id is None]
        if not todo:
            return
        rows = conn.execute("SELECT device_id, meter, series_id FROM series"
                            " WHERE device_id = ANY(%s)", ([m.device for m in todo],)).fetchall()
        ids = {(str(d), str(mt)): int(s) for d, mt, s in rows}
        for m in todo:
            m.series_id = ids.get((m.device, m.meter))

    def _window(self, conn: psycopg.Connection, m: _Meter, n: int) -> tuple[int, int]:
        """(rows of taken values in (checked, n], distinct taken values there)."""
        if m.series_id is None:
            return 0, 0
        row = conn.execute(
            "SELECT count(*), count(DISTINCT value) FROM readings WHERE series_id = %(sid)s"
            " AND ts > %(lo)s AND ts <= %(hi)s AND value <> ALL(%(nt)s)",
            {"lo": stamp(m.checked), "hi": stamp(n), "sid": m.series_id,
             "nt": _floats(m.never_taken)}).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def _upto(self, conn: psycopg.Connection, m: _Meter, n: int) -> tuple[int, int]:
        """(rows of taken values up to n, extra copies of never-taken values ever stored).

        A never-taken value may still arrive (the agent was killed just after committing it):
        once is fine, twice is a copy."""
        if m.series_id is None:
            return 0, 0
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE series_id = %(sid)s AND ts <= %(hi)s"
            " AND value <> ALL(%(nt)s)",
            {"sid": m.series_id, "hi": stamp(n), "nt": _floats(m.never_taken)}).fetchone()
        nt = conn.execute(
            "SELECT count(*) - count(DISTINCT value) FROM readings WHERE series_id = %s"
            " AND ts = ANY(%s)", (m.series_id, [stamp(v) for v in m.never_taken])).fetchone()
        assert row is not None
        assert nt is not None
        return int(row[0]), int(nt[0])

    def _expected(self, m: _Meter, n: int) -> int:
        return n - m.checked - sum(1 for v in m.never_taken if m.checked < v <= n)

    def _missing(self, conn: psycopg.Connection, m: _Meter, n: int) -> int:
        if n <= m.checked:
            return 0
        if m.series_id is None:
            self._series(conn)
        _, taken = self._window(conn, m, n)
        return max(self._expected(m, n) - taken, 0)

    def _settle(self, conn: psycopg.Connection, m: _Meter, n: int) -> tuple[int, int]:
        """Count the window as it is now and move the checked mark to ``n``."""
        n = max(n, m.checked)
        with conn.transaction():  # every count from one snapshot
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            rows, taken = self._window(conn, m, n)
            upto, nt_copies = self._upto(conn, m, n)
        lost = max(self._expected(m, n) - taken, 0)
        dup = rows - taken + max(nt_copies - m.nt_copies, 0)
        older = upto - rows - m.rows  # rows at or before the old mark that were not there
        if older > 0:
            dup += older
        elif older < 0:
            lost += -older
        m.checked, m.rows, m.nt_copies = n, upto, max(nt_copies, m.nt_copies)
        return lost, dup

    def _usage(self, conn: psycopg.Connection, m: _Meter) -> tuple[str | None, int]:
        """Compare derived usage with the register over the fully derived buckets."""
        if m.series_id is None or m.checked == 0:
            return None, 0
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row = conn.execute(
                "SELECT (SELECT min(ts_from) FROM usage_dirty WHERE series_id = %(sid)s),"
                " (SELECT value FROM readings WHERE series_id = %(sid)s ORDER BY ts LIMIT 1)",
                {"sid": m.series_id}).fetchone()
            assert row is not None
            dirty, first = row
            if first is None:
                return None, 0
            edge = stamp(m.checked) if dirty is None else min(dirty, stamp(m.checked))
            # the bucket before the edge may still miss the reading that ends it
            upto = _floor(edge) - _BUCKET
            first_bucket = _floor(stamp(int(first)))
            if upto <= first_bucket:
                return None, 0
            got = conn.execute(
                "SELECT coalesce(sum(quantity), 0), coalesce(sum(estimated), 0),"
                " coalesce(sum(quarantined), 0),"
                " count(*) FILTER (WHERE bucket > %(fb)s AND abs(quantity - %(per)s) > 1e-6)"
                " FROM usage_15m WHERE series_id = %(sid)s AND bucket < %(upto)s",
                {"sid": m.series_id, "fb": first_bucket, "upto": upto,
                 "per": _PER_BUCKET}).fetchone()
        assert got is not None
        quantity, estimated, quarantined, odd = float(got[0]), float(got[1]), float(got[2]), got[3]
        expected = (upto - _T_BASE).total_seconds() - float(first)
        if abs(quantity - expected) > 1e-6 * max(expected, 1.0) or estimated or quarantined \
                or odd:
            return (f"{m.device}/{m.meter} usage before {upto:%Y-%m-%d %H:%M}: {quantity}"
                    f" (register says {expected}), estimated {estimated}, quarantined"
                    f" {quarantined}, {odd} bucket(s) not {_PER_BUCKET}"), int(expected)
        return None, int(expected)


def _floats(values: set[int]) -> list[float]:
    return [float(v) for v in sorted(values)]


def _floor(t: datetime) -> datetime:
    return t - timedelta(seconds=t.timestamp() % _BUCKET.total_seconds())

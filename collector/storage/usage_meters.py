"""Meter configuration and replacement events (tables ``meter_config``, ``meter_replacements``).

A change here also queues the series' affected range in ``usage_dirty`` (same transaction), so
the next ``refresh_usage`` re-derives its usage with the new settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from collector.errors import NotFound, UsageError
from collector.storage.database import translate_errors
from collector.usage import MeterConfig, Replacement, SeriesKind
from collector.usage.cadence import learned_config

__all__ = [
    "SeriesMeta",
    "add_replacement",
    "load_meta",
    "meter_config",
    "put_meter_config",
    "replacements",
]

Conn = psycopg.Connection[Any]


def _require_series(conn: Conn, series_id: int) -> None:
    row = conn.execute("SELECT 1 FROM series WHERE series_id = %s", (series_id,)).fetchone()
    if row is None:
        raise NotFound(f"series {series_id} does not exist")


def _config(row: Sequence[Any]) -> MeterConfig:
    return MeterConfig(
        register_max=row[0],
        max_rate_per_hour=row[1],
        expected_interval_s=float(row[2]),
        gap_factor=float(row[3]),
        short_gap_s=float(row[4]),
        profile_weeks=int(row[5]),
        glitch_window=int(row[6]),
        jitter_tolerance=float(row[7]),
        max_gap_s=float(row[8]),
        counter_kind=str(row[9]),
    )


_NO_TIMES: npt.NDArray[np.float64] = np.zeros(0)
_LEARN_FROM = 49  # the most recent readings a cadence is learned from


def _recent_times(conn: Conn, series_ids: Sequence[int]) -> dict[int, npt.NDArray[np.float64]]:
    """The times (Unix s) of the latest readings of each series without a configuration."""
    if not series_ids:
        return {}
    rows = conn.execute(
        "SELECT s.id, extract(epoch FROM r.ts)::float8 FROM unnest(%s::bigint[]) AS s(id)"
        " CROSS JOIN LATERAL (SELECT ts FROM readings WHERE series_id = s.id"
        " ORDER BY ts DESC LIMIT %s) r",
        (list(series_ids), _LEARN_FROM),
    ).fetchall()
    by_series: dict[int, list[float]] = {}
    for sid, t in rows:
        by_series.setdefault(int(sid), []).append(float(t))
    return {sid: np.asarray(ts, dtype=np.float64) for sid, ts in by_series.items()}


class SeriesMeta:
    """Kind, configuration and replacements of one series, as the refresh needs them."""

    __slots__ = ("config", "kind", "replacements", "series_id")

    def __init__(
        self,
        series_id: int,
        kind: SeriesKind,
        config: MeterConfig,
        replacements: tuple[Replacement, ...],
    ) -> None:
        self.series_id = series_id
        self.kind = kind
        self.config = config
        self.replacements = replacements


def load_meta(conn: Conn, series_ids: Sequence[int]) -> dict[int, SeriesMeta]:
    """Metadata of the given series (unknown ids are left out)."""
    with translate_errors("load meter configuration"):
        rows = conn.execute(
            "SELECT s.series_id, s.kind, mc.series_id IS NOT NULL,"
            " register_max, max_rate_per_hour, expected_interval_s, gap_factor, short_gap_s,"
            " profile_weeks, glitch_window, jitter_tolerance, max_gap_s, counter_kind"
            " FROM series s LEFT JOIN meter_config mc USING (series_id)"
            " WHERE s.series_id = ANY(%s)",
            (list(series_ids),),
        ).fetchall()
        reps = conn.execute(
            "SELECT series_id, extract(epoch FROM at)::float8, old_final, new_initial"
            " FROM meter_replacements WHERE series_id = ANY(%s) ORDER BY series_id, at",
            (list(series_ids),),
        ).fetchall()
    by_series: dict[int, list[Replacement]] = {}
    for r in reps:
        by_series.setdefault(int(r[0]), []).append(Replacement(r[1], r[2], r[3]))
    with translate_errors("learn meter reading intervals"):
        learned = _recent_times(conn, [int(r[0]) for r in rows if not r[2]])
    out: dict[int, SeriesMeta] = {}
    for row in rows:
        sid = int(row[0])
        cfg = _config(row[3:]) if row[2] else learned_config(learned.get(sid, _NO_TIMES))
        out[sid] = SeriesMeta(sid, SeriesKind(row[1]), cfg, tuple(by_series.get(sid, ())))
    return out


def meter_config(conn: Conn, series_id: int) -> MeterConfig:
    """The configuration of a series (defaults when none was stored); NotFound if no series."""
    meta = load_meta(conn, [series_id])
    if series_id not in meta:
        raise NotFound(f"series {series_id} does not exist")
    return meta[series_id].config


def _queue_all(conn: Conn, series_id: int, now: datetime) -> None:
    conn.execute(
        "INSERT INTO usage_dirty (series_id, ts_from, ts_to, queued_at)"
        " SELECT series_id, min(ts), max(ts), %s FROM readings WHERE series_id = %s"
        " GROUP BY series_id",
        (now, series_id),
    )


def put_meter_config(conn: Conn, series_id: int, config: MeterConfig, now: datetime) -> None:
    """Store the configuration and queue the series' whole history for re-derivation."""
    with translate_errors("store meter configuration"), conn.transaction():
        _require_series(conn, series_id)
        conn.execute(
            "INSERT INTO meter_config (series_id,"
            " register_max, max_rate_per_hour, expected_interval_s, gap_factor, short_gap_s,"
            " profile_weeks, glitch_window, jitter_tolerance, max_gap_s, counter_kind,"
            " updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (series_id) DO UPDATE SET"
            " register_max = excluded.register_max,"
            " max_rate_per_hour = excluded.max_rate_per_hour,"
            " expected_interval_s = excluded.expected_interval_s,"
            " gap_factor = excluded.gap_factor, short_gap_s = excluded.short_gap_s,"
            " profile_weeks = excluded.profile_weeks, glitch_window = excluded.glitch_window,"
            " jitter_tolerance = excluded.jitter_tolerance, max_gap_s = excluded.max_gap_s,"
            " counter_kind = excluded.counter_kind, updated_at = excluded.updated_at",
            (
                series_id,
                config.register_max,
                config.max_rate_per_hour,
                config.expected_interval_s,
                config.gap_factor,
                config.short_gap_s,
                config.profile_weeks,
                config.glitch_window,
                config.jitter_tolerance,
                config.max_gap_s,
                config.counter_kind,
                now,
            ),
        )
        _queue_all(conn, series_id, now)


def replacements(conn: Conn, series_id: int) -> list[Replacement]:
    """Replacement events of a series, oldest first."""
    meta = load_meta(conn, [series_id])
    if series_id not in meta:
        raise NotFound(f"series {series_id} does not exist")
    return list(meta[series_id].replacements)


def add_replacement(
    conn: Conn, series_id: int, replacement: Replacement, now: datetime, note: str | None = None
) -> None:
    """Record a meter swap and queue the readings around it for re-derivation."""
    if not (replacement.old_final >= 0 and replacement.new_initial >= 0):
        raise UsageError("register values of a replacement must be >= 0")
    at = datetime.fromtimestamp(replacement.at, UTC)
    with translate_errors("store meter replacement"), conn.transaction():
        _require_series(conn, series_id)
        try:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO meter_replacements"
                    " (series_id, at, old_final, new_initial, note, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (series_id, at, replacement.old_final, replacement.new_initial, note, now),
                )
        except psycopg.errors.UniqueViolation as exc:
            raise UsageError(f"series {series_id} already has a replacement at {at}") from exc
        conn.execute(
            "INSERT INTO usage_dirty (series_id, ts_from, ts_to, queued_at)"
            " VALUES (%s, %s, %s, %s)",
            (series_id, at, at, now),
        )

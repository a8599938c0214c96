"""What the anomaly detectors need beyond usage: vacancies, last readings, clamped buckets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from collector.errors import AnalyticsError
from collector.storage.database import translate_errors

__all__ = [
    "Vacancy",
    "add_vacancy",
    "clamped_buckets",
    "last_readings",
    "list_vacancies",
    "series_units",
    "vacancies_for_series",
]

Conn = psycopg.Connection[Any]
NEGATIVE_CLAMPED = 512  # collector.usage.UsageFlag.NEGATIVE_CLAMPED


@dataclass(frozen=True, slots=True)
class Vacancy:
    vacancy_id: int
    device_id: str
    vacant_from: datetime
    vacant_to: datetime | None
    note: str | None


def add_vacancy(
    conn: Conn, device_id: str, vacant_from: datetime, vacant_to: datetime | None, note: str | None
) -> Vacancy:
    """Mark the site ``device_id`` vacant in ``[vacant_from, vacant_to)``."""
    if vacant_to is not None and vacant_to <= vacant_from:
        raise AnalyticsError("a vacancy must end after it starts")
    with translate_errors("add vacancy"):
        row = conn.execute(
            "INSERT INTO site_vacancies (device_id, vacant_from, vacant_to, note)"
            " VALUES (%s, %s, %s, %s)"
            " RETURNING vacancy_id, device_id, vacant_from, vacant_to, note",
            (device_id, vacant_from, vacant_to, note),
        ).fetchone()
    assert row is not None
    return Vacancy(*row)


def list_vacancies(conn: Conn, device_id: str) -> list[Vacancy]:
    with translate_errors("list vacancies"):
        rows = conn.execute(
            "SELECT vacancy_id, device_id, vacant_from, vacant_to, note FROM site_vacancies"
            " WHERE device_id = %s ORDER BY vacant_from",
            (device_id,),
        ).fetchall()
    return [Vacancy(*r) for r in rows]


def vacancies_for_series(
    conn: Conn, series_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, list[tuple[int, int]]]:
    """Vacancy windows (Unix s, clipped to ``[start, end)``) of each series' site."""
    with translate_errors("load vacancies"):
        rows = conn.execute(
            "SELECT s.series_id, greatest(v.vacant_from, %s), least(coalesce(v.vacant_to,"
            " 'infinity'), %s) FROM site_vacancies v JOIN series s USING (device_id)"
            " WHERE s.series_id = ANY(%s) AND v.vacant_from < %s"
            " AND coalesce(v.vacant_to, 'infinity') > %s ORDER BY 1, 2",
            (start, end, list(series_ids), end, start),
        ).fetchall()
    out: dict[int, list[tuple[int, int]]] = {}
    for sid, a, b in rows:
        out.setdefault(int(sid), []).append((int(a.timestamp()), int(b.timestamp())))
    return out


def last_readings(conn: Conn, series_ids: Sequence[int], before: datetime) -> dict[int, datetime]:
    """Time of each series' last reading before ``before`` (series without any are absent)."""
    with translate_errors("load last readings"):
        rows = conn.execute(
            "SELECT s.id, r.ts FROM unnest(%s::bigint[]) AS s(id) CROSS JOIN LATERAL ("
            " SELECT ts FROM readings WHERE series_id = s.id AND ts < %s"
            " ORDER BY ts DESC LIMIT 1) r",
            (list(series_ids), before),
        ).fetchall()
    return {int(r[0]): r[1] for r in rows}


def clamped_buckets(
    conn: Conn, series_ids: Sequence[int], start: datetime, end: datetime
) -> list[tuple[int, int]]:
    """``(series_id, bucket Unix s)`` of buckets where the usage engine clamped a negative
    increase at zero."""
    with translate_errors("load clamped buckets"):
        rows = conn.execute(
            "SELECT series_id, extract(epoch FROM bucket)::bigint FROM usage_15m"
            " WHERE series_id = ANY(%s) AND bucket >= %s AND bucket < %s AND flags & %s <> 0",
            (list(series_ids), start, end, NEGATIVE_CLAMPED),
        ).fetchall()
    return [(int(r[0]), int(r[1])) for r in rows]


def series_units(conn: Conn, series_ids: Sequence[int]) -> dict[int, str]:
    with translate_errors("load series units"):
        rows = conn.execute(
            "SELECT series_id, unit FROM series WHERE series_id = ANY(%s)", (list(series_ids),)
        ).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}

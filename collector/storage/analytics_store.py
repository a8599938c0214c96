"""Which series (and when) a scope of the analytics covers: meter, site, customer, plan, fleet.

A customer's or plan's meters count only while subscribed (their subscription windows); a
meter, a site (every meter of one device) or the fleet count whole. Figures never mix units:
a scope whose meters have several units needs ``unit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from collector.analytics.model import ScopeKind, SeriesWindow
from collector.errors import AnalyticsError, NotFound
from collector.storage.database import translate_errors

__all__ = ["ScopeSeries", "customer_zone", "scope_series"]

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class ScopeSeries:
    """The series windows of a scope, their unit, the scope's natural zone (a customer's zone,
    else None) and the plan version of each window (None outside subscriptions)."""

    windows: tuple[SeriesWindow, ...]
    unit: str | None
    tz: str | None
    plan_versions: tuple[int | None, ...]
    fleet: bool = False  # every meter of ``unit``: its usage is the fleet rollup's

    @property
    def series_ids(self) -> list[int]:
        return sorted({w.series_id for w in self.windows})


def _ts(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp())


def customer_zone(conn: Conn, customer_id: int) -> str:
    """The time zone of a customer; NotFound if there is none."""
    with translate_errors("load customer zone"):
        row = conn.execute(
            "SELECT time_zone FROM customers WHERE customer_id = %s", (customer_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist")
    return str(row[0])


def _one_unit(units: Sequence[str], unit: str | None, what: str) -> str | None:
    found = sorted(set(units))
    if unit is not None:
        return unit
    if len(found) > 1:
        raise AnalyticsError(f"{what} has meters in several units {found}; choose one with unit=")
    return found[0] if found else None


def scope_series(
    conn: Conn,
    kind: ScopeKind | str,
    ident: str | None,
    start: datetime,
    end: datetime,
    *,
    unit: str | None = None,
) -> ScopeSeries:
    """The series windows of the scope ``kind``/``ident`` that overlap ``[start, end)``."""
    k = ScopeKind(kind)
    if k is not ScopeKind.FLEET and not ident:
        raise AnalyticsError(f"scope {k.value} needs an id")
    with translate_errors("resolve analytics scope"):
        if k in (ScopeKind.CUSTOMER, ScopeKind.PLAN):
            return _subscribed(conn, k, str(ident), start, end, unit=unit)
        if k is ScopeKind.METER:
            if not str(ident).isdigit():
                raise AnalyticsError("a meter id is a series id (an integer)")
            rows = conn.execute(
                "SELECT series_id, unit FROM series WHERE series_id = %s", (int(str(ident)),)
            ).fetchall()
            if not rows:
                raise NotFound(f"meter {ident} does not exist")
        elif k is ScopeKind.SITE:
            rows = conn.execute(
                "SELECT series_id, unit FROM series WHERE device_id = %s"
                " AND (%s::text IS NULL OR unit = %s) ORDER BY series_id",
                (ident, unit, unit),
            ).fetchall()
            if not rows:
                raise NotFound(f"site {ident} has no meters" + (f" in {unit}" if unit else ""))
        else:
            rows = conn.execute(
                "SELECT series_id, unit FROM series WHERE (%s::text IS NULL OR unit = %s)"
                " ORDER BY series_id",
                (unit, unit),
            ).fetchall()
    u = _one_unit([r[1] for r in rows], unit, f"{k.value} {ident or ''}".strip())
    wins = tuple(SeriesWindow(int(r[0])) for r in rows if r[1] == u)
    return ScopeSeries(wins, u, None, tuple(None for _ in wins), fleet=k is ScopeKind.FLEET)


def _subscribed(
    conn: Conn, k: ScopeKind, ident: str, start: datetime, end: datetime, *, unit: str | None
) -> ScopeSeries:
    if not ident.isdigit():
        raise AnalyticsError(f"a {k.value} id is an integer")
    key = int(ident)
    tz: str | None = None
    if k is ScopeKind.CUSTOMER:
        tz = customer_zone(conn, key)
        where = sql.SQL("s.customer_id = %s")
    else:
        if conn.execute("SELECT 1 FROM plans WHERE plan_id = %s", (key,)).fetchone() is None:
            raise NotFound(f"plan {key} does not exist")
        where = sql.SQL("v.plan_id = %s")
    rows = conn.execute(
        sql.SQL(
            "SELECT s.series_id, s.valid_from, s.valid_to, s.plan_version_id, r.unit"
            " FROM subscriptions s JOIN plan_versions v USING (plan_version_id)"
            " JOIN series r ON r.series_id = s.series_id"
            " WHERE {where} AND s.valid_from < %s AND coalesce(s.valid_to, 'infinity') > %s"
            " AND (%s::text IS NULL OR r.unit = %s) ORDER BY s.series_id, s.valid_from"
        ).format(where=where),
        (key, end, start, unit, unit),
    ).fetchall()
    u = _one_unit([r[4] for r in rows], unit, f"{k.value} {key}")
    picked = [r for r in rows if r[4] == u]
    return ScopeSeries(
        tuple(SeriesWindow(int(r[0]), _ts(r[1]), _ts(r[2])) for r in picked),
        u,
        tz,
        tuple(int(r[3]) for r in picked),
    )

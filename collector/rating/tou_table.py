"""Vectorised time-of-use lookup: one period index per UTC time slot, computed once per call.

Instead of converting every reading to local time, the engine builds a table with the period
of each ``step``-second slot (15 min; 1 min if some zone offset or transition is not on the
15-minute grid) between the first and last reading, calling ``zoneinfo`` once per slot, and
looks readings up with ``table[(start - t0) // step]``. DST is handled by the table: a
23-hour day simply has four fewer slots, a 25-hour day four more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from collector.rating.plan import Plan

WEEKEND_FIRST_DAY = 5  # Saturday (Monday is 0)
_STEPS = (900, 60)


@dataclass(frozen=True, slots=True)
class Calendar:
    """The plan's schedule as period indices: ``[weekend][month - 1][hour]``, and holidays."""

    matrix: tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]
    holidays: frozenset[date]

    @classmethod
    def of(cls, plan: Plan) -> Calendar:
        """The calendar of ``plan`` (which must have a schedule)."""
        assert plan.schedule is not None
        names = plan.energy_period_names()
        index = {n: i for i, n in enumerate(names)}
        wd, we = plan.schedule.matrices()
        mats = tuple(tuple(tuple(index[n] for n in row) for row in m) for m in (wd, we))
        return cls((mats[0], mats[1]), frozenset(plan.holidays))

    def period(self, local: datetime) -> int:
        """Period index of a local wall-clock time (weekends and holidays: weekend matrix)."""
        weekend = local.weekday() >= WEEKEND_FIRST_DAY or local.date() in self.holidays
        return self.matrix[1 if weekend else 0][local.month - 1][local.hour]


@dataclass(frozen=True, slots=True)
class PeriodTable:
    """Period index per slot of ``step`` seconds from ``t0`` (Unix seconds, UTC)."""

    t0: int
    step: int
    table: npt.NDArray[np.int16]

    def lookup(self, start: npt.NDArray[np.int64]) -> npt.NDArray[np.int16]:
        """Period index of each instant in ``start`` (must lie inside the table)."""
        return self.table[(start - self.t0) // self.step]


def build_table(plan: Plan, t_min: int, t_max: int) -> PeriodTable:
    """The period table covering ``[t_min, t_max]`` for ``plan``'s schedule and zone."""
    zone = ZoneInfo(plan.time_zone)
    calendar = Calendar.of(plan)
    for step in _STEPS:
        t0 = (t_min // step) * step
        count = (t_max - t0) // step + 1
        ok, table = _try(calendar, zone, t0, step, count)
        if ok:
            return PeriodTable(t0, step, table)
    raise AssertionError("unreachable: every zone offset is a whole number of minutes")


def _try(
    calendar: Calendar, zone: ZoneInfo, t0: int, step: int, count: int
) -> tuple[bool, npt.NDArray[np.int16]]:
    table = np.empty(count, dtype=np.int16)
    base = datetime.fromtimestamp(t0, UTC)
    for i in range(count):
        first = (base + timedelta(seconds=i * step)).astimezone(zone)
        last = (base + timedelta(seconds=(i + 1) * step - 1)).astimezone(zone)
        p = calendar.period(first)
        if first.utcoffset() != last.utcoffset() or calendar.period(last) != p:
            return False, table
        table[i] = p
    return True, table

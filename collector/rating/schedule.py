"""Time-of-use schedules: which period (``peak``, ``offpeak``…) each local hour belongs to.

A schedule is a month × day-type × hour matrix like OpenEI URDB's 12×24 weekday and weekend
schedules, written either directly (``weekday``/``weekend``: 12 rows of 24 period names) or by
season (``seasons``: months plus one 24-hour profile for weekdays and one for weekends; a profile
is a list of 24 names or a mapping of hour ranges such as ``"7-20": peak``). Saturdays, Sundays
and the plan's holidays use the weekend profile. Hours are local hours in the plan's time zone.
"""

from __future__ import annotations

from functools import cached_property

from pydantic import BaseModel, ConfigDict, model_validator

from collector.rating.located import located as _bad

HOURS = 24
MONTHS = 12

HourProfile = tuple[str, ...] | dict[str, str]


def expand_profile(profile: HourProfile, where: str) -> tuple[str, ...]:
    """24 period names, one per local hour, from a list or a ``"from-to": name`` mapping."""
    if isinstance(profile, tuple):
        if len(profile) != HOURS:
            raise _bad(where, f"an hour profile needs 24 entries, got {len(profile)}")
        return profile
    hours: list[str | None] = [None] * HOURS
    for span, name in profile.items():
        try:
            lo_s, hi_s = span.split("-")
            lo, hi = int(lo_s), int(hi_s)
        except ValueError:
            raise _bad(f"{where}.{span}", "hour range must look like '7-20'") from None
        if not 0 <= lo < hi <= HOURS:
            raise _bad(f"{where}.{span}", "hour range must ascend within 0-24")
        for h in range(lo, hi):
            if hours[h] is not None:
                raise _bad(f"{where}.{span}", f"hour {h} is in two ranges")
            hours[h] = name
    missing = [h for h, n in enumerate(hours) if n is None]
    if missing:
        raise _bad(where, f"hours {missing} have no period")
    return tuple(n for n in hours if n is not None)


class Season(BaseModel):
    """Months (1-12) that share one weekday and one weekend hour profile."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    months: tuple[int, ...]
    weekday: HourProfile
    weekend: HourProfile


class Schedule(BaseModel):
    """A TOU schedule by ``seasons`` or by URDB-style 12×24 ``weekday``/``weekend`` matrices."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    seasons: dict[str, Season] | None = None
    weekday: tuple[tuple[str, ...], ...] | None = None
    weekend: tuple[tuple[str, ...], ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> Schedule:
        self._expand()
        return self

    @cached_property
    def _expanded(self) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
        return self._expand()

    @cached_property
    def _names(self) -> tuple[str, ...]:
        wd, we = self._expanded
        return tuple(sorted({n for mat in (wd, we) for row in mat for n in row}))

    def matrices(self) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
        """``(weekday, weekend)``, each 12 months × 24 hours of period names."""
        return self._expanded

    def _expand(self) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
        if self.seasons is not None:
            if self.weekday is not None or self.weekend is not None:
                raise _bad("seasons", "give either seasons or weekday/weekend matrices")
            wd: list[tuple[str, ...] | None] = [None] * MONTHS
            we: list[tuple[str, ...] | None] = [None] * MONTHS
            for name, season in self.seasons.items():
                day = expand_profile(season.weekday, f"seasons.{name}.weekday")
                end = expand_profile(season.weekend, f"seasons.{name}.weekend")
                for m in season.months:
                    if not 1 <= m <= MONTHS:
                        raise _bad(f"seasons.{name}.months", f"month {m} is not 1-12")
                    if wd[m - 1] is not None:
                        raise _bad(f"seasons.{name}.months", f"month {m} is in two seasons")
                    wd[m - 1], we[m - 1] = day, end
            missing = [m + 1 for m in range(MONTHS) if wd[m] is None]
            if missing:
                raise _bad("seasons", f"months {missing} are in no season")
            return (tuple(r for r in wd if r is not None), tuple(r for r in we if r is not None))
        if self.weekday is None or self.weekend is None:
            raise _bad("weekday", "give seasons, or both weekday and weekend 12×24 matrices")
        for label, matrix in (("weekday", self.weekday), ("weekend", self.weekend)):
            if len(matrix) != MONTHS:
                raise _bad(label, f"needs 12 month rows, got {len(matrix)}")
            for m, row in enumerate(matrix):
                if len(row) != HOURS:
                    raise _bad(f"{label}[{m}]", f"needs 24 hours, got {len(row)}")
        return self.weekday, self.weekend

    def period_names(self) -> tuple[str, ...]:
        """All period names used, sorted: a name's position is its period index."""
        return self._names

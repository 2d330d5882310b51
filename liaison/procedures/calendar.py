"""Durations as configuration writes them, and Luxembourg's working days.

Every duration says what it counts: ``"15 minutes"``, ``"4 hours"``, ``"3 days"``
(calendar days) or ``"2 working days"`` (Monday to Friday, Luxembourg's public
holidays excepted, from the maintained ``holidays`` package). Working days are
counted on the calendar of Europe/Luxembourg, where the Secretariat works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

from liaison.errors import ConfigError

LUXEMBOURG = ZoneInfo("Europe/Luxembourg")
_UNITS = {
    "second": "seconds",
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "working day": "working days",
}
_PATTERN = re.compile(r"^\s*(\d{1,6})\s+(second|minute|hour|day|working day)s?\s*$")


@dataclass(frozen=True, slots=True)
class Duration:
    """An amount of a unit; ``working days`` skip weekends and Luxembourg holidays."""

    amount: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> Duration:
        """``"2 working days"`` → Duration(2, "working days"); a ConfigError otherwise."""
        match = _PATTERN.match(text.lower())
        if match is None:
            raise ConfigError(
                f"duration {text!r}: write a number and a unit: seconds, minutes, hours, "
                "days (calendar) or working days"
            )
        return cls(int(match.group(1)), _UNITS[match.group(2)])

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"

    def after(self, start: datetime) -> datetime:
        """The moment this duration after ``start`` (UTC in, UTC out)."""
        if self.unit != "working days":
            return start + timedelta(**{self.unit: self.amount})
        local = start.astimezone(LUXEMBOURG)
        day = add_working_days(local.date(), self.amount)
        # Same wall-clock time on the target day, in Luxembourg (DST-safe).
        return datetime.combine(day, local.timetz().replace(tzinfo=None), LUXEMBOURG).astimezone(
            UTC
        )


@cache
def _holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("LU", years=year))


def is_working_day(day: date) -> bool:
    """Monday to Friday and not a Luxembourg public holiday."""
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_working_days(day: date, count: int) -> date:
    """The ``count``-th working day after ``day`` (``day`` itself never counts)."""
    remaining = count
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def local_date(moment: datetime) -> date:
    """The date in Luxembourg at ``moment``: registry dates and years follow it."""
    return moment.astimezone(LUXEMBOURG).date()


__all__ = ["LUXEMBOURG", "Duration", "add_working_days", "is_working_day", "local_date"]

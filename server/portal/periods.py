"""Deadlines counted as 《道路交通事故处理程序规定》 counts them.

A period in days does not count the day it starts on (a determination delivered on 3 March may be
contested until the end of 6 March, Beijing time); a period whose last day is a rest day ends on
the next working day instead. Rest days are Saturdays and Sundays, plus the public holidays the
server is told of, minus the weekend days the State Council makes working days (调休); both lists
come from configuration because they are published a year at a time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from server.cases import LOCAL_TZ


@dataclass(frozen=True)
class Calendar:
    holidays: Collection[date] = field(default_factory=frozenset)
    working_weekends: Collection[date] = field(default_factory=frozenset)

    def is_rest_day(self, day: date) -> bool:
        if day in self.working_weekends:
            return False
        return day.weekday() >= 5 or day in self.holidays


def local_day(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TZ).date()


def last_day(start: datetime, days: int, calendar: Calendar) -> date:
    """The last calendar day of a period of ``days`` days starting at ``start``."""
    end = local_day(start) + timedelta(days=days)
    while calendar.is_rest_day(end):
        end += timedelta(days=1)
    return end


def deadline(start: datetime, days: int, calendar: Calendar) -> datetime:
    """The first instant after the period: midnight, Beijing time, after its last day."""
    after = last_day(start, days, calendar) + timedelta(days=1)
    return datetime.combine(after, time(0), tzinfo=LOCAL_TZ)


def within(start: datetime, days: int, calendar: Calendar, moment: datetime) -> bool:
    return moment < deadline(start, days, calendar)

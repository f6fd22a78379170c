"""Hour-exact windows over day and hour rollups (docs/rollups.md#read-api).

A read answers exactly the window [start, end) it was asked, whatever its granularity: the
whole project-timezone days inside the window come from the daily rollups (few rows), the
partial days at either edge from the hourly rollups (at most 23 hours each side).

In zones whose midnight falls inside a UTC hour (e.g. Asia/Kolkata, +05:30) hours cannot meet
days exactly: a window on two midnights is read from days alone, any other from hours alone
(its bounds floored to the UTC hour).
"""

import datetime as dt
from dataclasses import dataclass

from .definitions import day_start, hour_floor


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    first_day: dt.date | None  # whole project-timezone days [first_day, last_day) inside the window
    last_day: dt.date | None
    edges: tuple[tuple[dt.datetime, dt.datetime], ...]  # UTC hour ranges outside those days

    @property
    def has_days(self) -> bool:
        return self.first_day is not None and self.first_day < self.last_day


def _on_hour(value: dt.datetime) -> bool:
    return value.minute == 0 and value.second == 0 and value.microsecond == 0


def split(project, start: dt.datetime, end: dt.datetime) -> Window:
    """The whole days and the edge hours of [start, end)."""
    tzinfo = project.tzinfo
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    first = start.astimezone(tzinfo).date()
    if day_start(first, tzinfo) < start:
        first += dt.timedelta(days=1)
    last = end.astimezone(tzinfo).date()  # its midnight is <= end
    if first < last:
        days_from = day_start(first, tzinfo).astimezone(dt.UTC)
        days_to = day_start(last, tzinfo).astimezone(dt.UTC)
        edges = tuple(edge for edge in ((start, days_from), (days_to, end)) if edge[0] < edge[1])
        if all(_on_hour(bound) for edge in edges for bound in edge):
            return Window(start, end, first, last, edges)
    hourly = (hour_floor(start), hour_floor(end))
    return Window(start, end, None, None, (hourly,) if hourly[0] < hourly[1] else ())


def hours_filter(window: Window, column: str = "d.hour") -> tuple[str, dict]:
    """SQL condition (and its parameters) selecting the window's edge hours."""
    if not window.edges:
        return "false", {}
    clauses, params = [], {}
    for i, (low, high) in enumerate(window.edges):
        clauses.append(f"({column} >= %(edge{i}_low)s AND {column} < %(edge{i}_high)s)")
        params[f"edge{i}_low"], params[f"edge{i}_high"] = low, high
    return "(" + " OR ".join(clauses) + ")", params


def shifted_back(instant: dt.datetime, tzinfo, days: int) -> dt.datetime:
    """`days` calendar days before `instant` in the project timezone (a midnight stays a
    midnight across a DST change)."""
    local = instant.astimezone(tzinfo)
    return (local - dt.timedelta(days=days)).astimezone(dt.UTC)

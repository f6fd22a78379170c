"""Query parameters shared by the read API and the dashboard pages (docs/rollups.md#read-api).

`start`/`end` are RFC 3339 datetimes with an offset or plain dates (midnight in the project
timezone); `end` is exclusive. Every read answers the hour-aligned window it was asked: both are
floored to the hour (a project-timezone midnight is kept as it is, also in zones whose midnight
is not on a UTC hour). Defaults: end = the start of the next hour, start = end - 30 days.
Data kept per day only (`attr.` filters, dimension breakdowns and groups) needs `start`/`end`
on project-timezone midnights, else a 400 naming them; its defaults are whole days (end = the
next midnight, so today is included). Errors are collected, each naming its parameter, and
raised together as ParamsInvalid.
"""

import datetime as dt
from dataclasses import dataclass, field

from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import now as utc_now

from costwatch.errors import api_error

from .definitions import HOUR, day_floor, day_start, hour_floor

METRICS = ("cost", "calls", "pro_share", "output_tokens_per_call", "uncapped_share")
GRANULARITIES = ("hour", "day")
FIXED_GROUPS = ("tier", "role", "model")
DEFAULT_RANGE = dt.timedelta(days=30)
MAX_RANGE = {"hour": dt.timedelta(days=93), "day": dt.timedelta(days=800)}
ATTR_PREFIX = "attr."


class ParamsInvalid(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass
class ReadParams:
    start: dt.datetime
    end: dt.datetime
    granularity: str = "day"
    environment: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    metric: str | None = None
    group_by: str | None = None

    @property
    def daily(self) -> bool:
        return self.granularity == "day"

    def window(self) -> dict:
        """The range and environment, as a selector's keyword arguments."""
        return {"start": self.start, "end": self.end, "environment": self.environment}


def is_day_start(value: dt.datetime, tzinfo) -> bool:
    local = value.astimezone(tzinfo)
    return local == day_start(local.date(), tzinfo)


def floor_to(value: dt.datetime, granularity: str, tzinfo) -> dt.datetime:
    """The hour (UTC) or the project-timezone day that holds `value`."""
    return hour_floor(value) if granularity == "hour" else day_floor(value, tzinfo)


def window_floor(value: dt.datetime, tzinfo) -> dt.datetime:
    """A window bound: floored to the hour, except that a project-timezone midnight stays itself."""
    if is_day_start(value, tzinfo):
        return value.astimezone(dt.UTC)
    return hour_floor(value)


def next_boundary(now: dt.datetime, granularity: str, tzinfo) -> dt.datetime:
    hour_end = hour_floor(now) + HOUR
    if granularity == "hour":
        return hour_end
    today = now.astimezone(tzinfo).date()
    return day_start(today + dt.timedelta(days=1), tzinfo).astimezone(dt.UTC)


EARLIEST, LATEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def _within_range(name: str, value: dt.datetime, errors: list) -> dt.datetime | None:
    """`0001-01-01T00:00:00+01:00` is a valid RFC 3339 text whose UTC instant is before year 1:
    refused here, naming the parameter, instead of overflowing later in some page or query."""
    try:
        inside = EARLIEST <= value.astimezone(dt.UTC) < LATEST
    except OverflowError:
        inside = False
    if inside:
        return value
    errors.append(api_error(name, "out_of_range", "must be between 1970-01-01 and 9000-01-01"))
    return None


def parse_instant(name: str, raw: str, tzinfo, errors: list, *, naive_local=False) -> dt.datetime | None:
    """An RFC 3339 datetime or a date (its midnight in the project timezone). `naive_local`: a
    datetime without an offset is project-timezone wall time (the pages' datetime-local pickers)."""
    raw = raw.strip()
    if "T" in raw or "t" in raw:
        raw = raw.replace(" ", "+")  # an unencoded '+' of the offset arrives as a space
    try:
        parsed = parse_datetime(raw) if len(raw) > 10 else None
    except ValueError:
        parsed = None
    if parsed is not None:
        if parsed.tzinfo is None:
            if naive_local:
                return _within_range(name, parsed.replace(tzinfo=tzinfo), errors)
            errors.append(api_error(name, "invalid", "an RFC 3339 datetime needs an offset (Z or +hh:mm)"))
            return None
        return _within_range(name, parsed, errors)
    try:
        day = parse_date(raw)
    except ValueError:
        day = None
    if day is None:
        errors.append(api_error(name, "invalid", f"{raw!r} is neither an RFC 3339 datetime nor a date "
                                                   "(e.g. 2026-11-01 or 2026-11-01T00:00:00Z)"))
        return None
    return _within_range(name, day_start(day, tzinfo), errors)


def _range(query, project, granularity, errors, now, *, day_only=False, naive_local=False):
    """The hour-aligned [start, end) window asked for; `day_only`: the data exists per
    project-timezone day alone, so both bounds must be midnights there."""
    tzinfo, own_errors = project.tzinfo, []
    start = (parse_instant("start", query["start"], tzinfo, own_errors, naive_local=naive_local)
             if query.get("start") else None)
    end = parse_instant("end", query["end"], tzinfo, own_errors, naive_local=naive_local) if query.get("end") else None
    if own_errors:
        errors.extend(own_errors)
        return None, None
    end = window_floor(end, tzinfo) if end else next_boundary(now or utc_now(), "day" if day_only else "hour",
                                                              tzinfo)
    if start:
        start = window_floor(start, tzinfo)
    elif day_only:
        start = day_start(end.astimezone(tzinfo).date() - DEFAULT_RANGE, tzinfo).astimezone(dt.UTC)
    else:
        start = end - DEFAULT_RANGE
    if day_only:
        for name, value in (("start", start), ("end", end)):
            if not is_day_start(value, tzinfo):
                errors.append(api_error(
                    name, "not_midnight",
                    f"must be a midnight in the project timezone ({project.timezone}), e.g. a date such as "
                    f"{value.astimezone(tzinfo).date().isoformat()}: attr. filters and dimension breakdowns are "
                    "kept per day"))
        if errors:
            return start, end
    if start >= end:
        errors.append(api_error("start", "start_not_before_end", "start must be before end (after flooring "
                                                                   "to the hour)"))
    elif end - start > MAX_RANGE[granularity] + dt.timedelta(hours=1):
        days = MAX_RANGE[granularity].days
        errors.append(api_error("start", "range_too_long",
                                  f"at most {days} days at {granularity} granularity"))
    return start, end


def _attrs(query, project, *, allow_attrs, errors):
    attrs = {}
    declared = list(project.dimensions or [])
    for key in query:
        if not key.startswith(ATTR_PREFIX):
            continue
        dimension, value = key[len(ATTR_PREFIX):], query.get(key)
        if not allow_attrs:
            errors.append(api_error(key, "not_daily", "attr.* filters apply to daily data only "
                                      "(features, breakdown, timeseries with granularity=day)"))
        elif dimension not in declared:
            known = ", ".join(declared) or "none declared"
            errors.append(api_error(key, "unknown_dimension",
                                      f"{dimension!r} is not a declared dimension of this project ({known})"))
        elif not value:
            errors.append(api_error(key, "blank", "give a value, e.g. attr.customer=acme"))
        else:
            attrs[dimension] = value
    if len(attrs) > 1:
        extra = sorted(attrs)[1]
        errors.append(api_error(f"{ATTR_PREFIX}{extra}", "one_dimension_only",
                                  "filter by one dimension at a time"))
    return attrs


def _choice(query, name, choices, errors, default=None):
    value = query.get(name) or default
    if value is not None and value not in choices:
        errors.append(api_error(name, "invalid_choice", f"{value!r} is not one of {', '.join(choices)}"))
        return None
    return value


def _environment(query, errors):
    value = query.get("environment")
    if value is None or value == "":
        return None
    if len(value) > 50:
        errors.append(api_error("environment", "max_length", "at most 50 characters"))
        return None
    return value


def parse_read_params(query, *, project, daily=True, allow_attrs=None, day_only=False, naive_local=False,
                      now=None) -> ReadParams:
    """Common parameters of a read over daily and hourly data (features, models, breakdown); raises
    ParamsInvalid. `day_only` (breakdown) or an attr. filter: the window must be whole days."""
    errors: list[dict] = []
    granularity = "day" if daily else "hour"
    environment = _environment(query, errors)
    attrs = _attrs(query, project, allow_attrs=daily if allow_attrs is None else allow_attrs, errors=errors)
    if errors:
        raise ParamsInvalid(errors)
    start, end = _range(query, project, granularity, errors, now, day_only=day_only or bool(attrs),
                        naive_local=naive_local)
    if errors:
        raise ParamsInvalid(errors)
    return ReadParams(start=start, end=end, granularity=granularity, environment=environment, attrs=attrs)


def parse_timeseries_params(query, *, project, now=None) -> ReadParams:
    """Adds metric (required), granularity [day] and group_by (tier|role|model|<dimension>)."""
    errors: list[dict] = []
    metric = query.get("metric")
    if not metric:
        errors.append(api_error("metric", "required", f"one of {', '.join(METRICS)}"))
    else:
        metric = _choice(query, "metric", METRICS, errors)
    granularity = _choice(query, "granularity", GRANULARITIES, errors, default="day") or "day"
    dimensions = list(project.dimensions or [])
    group_by = _choice(query, "group_by", (*FIXED_GROUPS, *dimensions), errors)
    if group_by in dimensions and granularity != "day":
        errors.append(api_error("group_by", "not_daily", "grouping by a dimension needs granularity=day"))
    environment = _environment(query, errors)
    attrs = _attrs(query, project, allow_attrs=granularity == "day", errors=errors)
    if attrs and group_by in FIXED_GROUPS:
        errors.append(api_error("group_by", "not_with_attr",
                                  f"dimension-filtered series cannot be grouped by {group_by}"))
    if attrs and group_by in dimensions and group_by not in attrs:
        errors.append(api_error("group_by", "not_with_attr", "group by the dimension you filter on, or none"))
    if errors:
        raise ParamsInvalid(errors)
    start, end = _range(query, project, granularity, errors, now, day_only=bool(attrs) or group_by in dimensions)
    if errors:
        raise ParamsInvalid(errors)
    return ReadParams(start=start, end=end, granularity=granularity, environment=environment, attrs=attrs,
                      metric=metric, group_by=group_by)


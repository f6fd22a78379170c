"""Timeseries: one metric per bucket (and group), zero-filled."""

import datetime as dt

from costwatch.errors import api_error

from ..definitions import day_start
from ..params import ParamsInvalid
from ..windows import split
from .parts import (
    HOUR_LOCAL_DAY,
    PART_NAMES,
    ZERO,
    _feature_id,
    _hour_filter,
    _merge_part_maps,
    _scope_where,
    _sum_parts,
    local_days,
    metrics_from_parts,
)

MAX_POINTS = 10_000
MAX_GROUPS = 50
OTHER_GROUP = "other"


def _metric_value(metric, parts):
    m = metrics_from_parts(parts)
    if metric == "cost":
        return m["cost_usd"] if m["calls"] else ZERO
    if metric == "calls":
        return m["calls"]
    return m[metric]


def bucket_starts(project, start, end, granularity) -> list[dt.datetime]:
    if granularity == "hour":
        count = int((end - start).total_seconds() // 3600)
        return [start + dt.timedelta(hours=i) for i in range(count)]
    tzinfo = project.tzinfo
    first, last = local_days(project, start, end)
    return [day_start(first + dt.timedelta(days=i), tzinfo)
            for i in range((last - first).days)]


def _series_source(project, *, granularity, group_by, attrs):
    """(table, bucket expression, group column or None) for a timeseries query."""
    dimensions = list(project.dimensions or [])
    if attrs or group_by in dimensions:
        return "metrics_dimensionday", "d.day", ("d.value" if group_by else None)
    if granularity == "hour":
        if group_by is None:
            return "metrics_featurehour", "d.hour", None
        return "metrics_hourlyrollup", "d.hour", f"d.{group_by}"
    if group_by == "model":  # FeatureDay has no model column
        return "metrics_modelday", "d.day", "d.model"
    return "metrics_featureday", "d.day", (f"d.{group_by}" if group_by else None)


def timeseries(*, project, feature=None, metric, granularity, start, end, environment=None, group_by=None,
               attrs=None) -> list[dict]:
    """[{"t", "value"[, "group"]}] for every bucket (and group) in [start, end), zero-filled
    (shares None on empty buckets). Timestamps: UTC hours, or local midnights for days; a daily
    series' first and last points cover only the window's hours (read from hourly rollups)."""
    table, bucket_expr, group_expr = _series_source(project, granularity=granularity, group_by=group_by,
                                                    attrs=attrs)
    where = ["d.project_id = %(project_id)s"]
    params = {"project_id": project.pk, "tz": project.timezone}
    window = split(project, start, end)
    daily = table in ("metrics_dimensionday", "metrics_featureday", "metrics_modelday")
    if daily:  # whole days here; the partial days at the edges from hourly rows, below
        params["first"], params["last"] = (window.first_day, window.last_day) if window.has_days else (None, None)
        where += ["d.day >= %(first)s", "d.day < %(last)s"]
    else:
        params["start"], params["end"] = start, end
        where += ["d.hour >= %(start)s", "d.hour < %(end)s"]
    if table == "metrics_dimensionday":
        (dimension, value), = (attrs or {group_by: None}).items()
        where.append("d.dimension = %(dimension)s")
        params["dimension"] = dimension
        if value is not None:
            where.append("d.value = %(value)s")
            params["value"] = value
    _scope_where(where, params, environment=environment, feature_id=_feature_id(project, feature))
    buckets = len(bucket_starts(project, start, end, granularity))
    _points_check(buckets, 1, granularity)
    cols = [bucket_expr] + ([group_expr] if group_expr else [])
    parts = {}
    if not daily or window.has_days:
        parts = _sum_parts(table, group_cols=cols, where=" AND ".join(where), params=params)
    if daily and window.edges and table != "metrics_dimensionday":  # dimension data: midnights only
        hour_table = "metrics_featurehour" if group_expr is None else "metrics_hourlyrollup"
        hour_where, hour_params = _hour_filter(project, window, environment, params.get("feature_id"))
        hour_cols = [HOUR_LOCAL_DAY] + ([group_expr] if group_expr else [])
        parts = _merge_part_maps(parts, _sum_parts(hour_table, group_cols=hour_cols, where=hour_where,
                                                   params=hour_params))
    if group_expr is not None:
        parts = _top_groups(parts, metric)
        _points_check(buckets, len({key[1] for key in parts}), granularity)
    return _zero_filled(project, parts, metric=metric, granularity=granularity, start=start, end=end,
                        grouped=group_expr is not None)


def _zero_filled(project, parts, *, metric, granularity, start, end, grouped) -> list[dict]:
    tzinfo = project.tzinfo
    groups = sorted({key[1] for key in parts}) if grouped else [None]
    by_bucket = {}
    for key, value in parts.items():
        bucket = key[0]
        if isinstance(bucket, dt.datetime):
            bucket = bucket.astimezone(dt.UTC)
        else:
            bucket = day_start(bucket, tzinfo)
        by_bucket[(bucket, key[1] if grouped else None)] = value
    points = []
    for bucket in bucket_starts(project, start, end, granularity):
        for group in groups:
            point = {"t": bucket, "value": _metric_value(metric, by_bucket.get((bucket, group), {}))}
            if grouped:
                point["group"] = group
            points.append(point)
    return points


def _points_check(buckets: int, groups: int, granularity: str) -> None:
    """A series answers at most MAX_POINTS points; past that, a 400 saying how to narrow it."""
    if buckets * groups <= MAX_POINTS:
        return
    shape = f"{buckets} {granularity}s" + (f" x {groups} groups" if groups > 1 else "")
    raise ParamsInvalid([api_error(
        "start", "too_many_points",
        f"this series would have {buckets * groups} points ({shape}), over the limit of {MAX_POINTS}: "
        "narrow it with a later start or an earlier end, granularity=day, or without group_by")])


def _merge_parts(total: dict, parts: dict) -> dict:
    merged = dict(total)
    for name in PART_NAMES:
        value = parts.get(name)
        if value is not None:
            merged[name] = value if merged.get(name) is None else merged[name] + value
    return merged


def _top_groups(parts: dict, metric: str) -> dict:
    """At most MAX_GROUPS groups, the ones with the highest value over the whole window; the
    others are summed, bucket by bucket, into one group named OTHER_GROUP."""
    by_group: dict = {}
    for (_bucket, group), value in parts.items():
        by_group[group] = _merge_parts(by_group.get(group, {}), value)
    if len(by_group) <= MAX_GROUPS:
        return parts
    values = {group: _metric_value(metric, summed) for group, summed in by_group.items()}
    ranked = sorted(values, key=lambda group: (values[group] is None, -(values[group] or 0), str(group)))
    kept = set(ranked[:MAX_GROUPS])
    folded: dict = {}
    for (bucket, group), value in parts.items():
        key = (bucket, group if group in kept else OTHER_GROUP)
        folded[key] = _merge_parts(folded.get(key, {}), value)
    return folded

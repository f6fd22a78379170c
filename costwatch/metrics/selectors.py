"""Reads for the read API, the pages and the rules: rollup tables only, never raw events.

Metric definitions are SPEC 4's, computed in one place (`metrics_from_parts`) from summed
rollup counters ("parts"), so the API, the pages and the tests cannot disagree:
- pro_share = Pro-tier primary+escalation calls / all primary+escalation calls (unknown tier
  counts in the denominator); uncapped_share = uncapped / cap-known calls; cap_hit_share =
  finish 'length' / calls; escalation_rate = escalation / primary calls;
- cost is a Decimal, None when nothing in it is priced; shares are None on a zero denominator.
Daily data (FeatureDay, ModelDay, DimensionDay) is in project-timezone days; hourly data
(FeatureHour, HourlyRollup) in UTC hours.
"""

import calendar
import datetime as dt
import itertools
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import connection
from django.utils import timezone

from ingest.models import Feature

from . import buckets
from .models import RollupState

ZERO = Decimal(0)
PART_NAMES = (
    "calls", "requests", "input_tokens", "output_tokens", "cost_usd", "priced_calls", "unpriced_calls",
    "cap_known_calls", "uncapped_calls", "cap_hit_calls", "error_calls", "routed_calls", "routed_pro_calls",
    "escalation_calls", "triage_cost_usd", "triage_priced", "escalation_cost_usd", "escalation_priced",
    "shadow_cost_usd", "shadow_priced",
)
_PLAIN = ("calls", None, "input_tokens", "output_tokens", "cost_usd", "priced_calls", "unpriced_calls",
          "cap_known_calls", "uncapped_calls", "cap_hit_calls", "error_calls")
ROUTED = "d.role IN ('primary', 'escalation')"


def _plain_sums():
    return [f"sum(d.{name})" if name else None for name in _PLAIN]


# Tables with a role (and tier) column per row: role parts are FILTERed sums.
ROLE_ROWS_PARTS = ", ".join([
    *[s or "sum(d.calls) FILTER (WHERE d.role = 'primary')" for s in _plain_sums()],
    f"sum(d.calls) FILTER (WHERE {ROUTED})",
    f"sum(d.calls) FILTER (WHERE {ROUTED} AND d.tier = 'pro')",
    "sum(d.calls) FILTER (WHERE d.role = 'escalation')",
    *[f"sum(d.cost_usd) FILTER (WHERE d.role = '{role}'), sum(d.priced_calls) FILTER (WHERE d.role = '{role}')"
      for role in ("triage", "escalation", "shadow")],
])
# Tables that carry per-role columns (FeatureHour, DimensionDay).
ROLE_COLUMNS_PARTS = ", ".join([
    *[s or "sum(d.primary_calls)" for s in _plain_sums()],
    "sum(d.routed_calls)", "sum(d.routed_pro_calls)", "sum(d.escalation_calls)",
    # A role's priced count only where it has calls, else NULL: like the FILTERed sums above.
    *[f"sum(d.{role}_cost_usd), CASE WHEN sum(d.{role}_calls) > 0 THEN sum(d.{role}_priced_calls) END"
      for role in ("triage", "escalation", "shadow")],
])
# ModelDay: no role column, but routed counts for pro_share.
MODEL_DAY_PARTS = ", ".join([
    *[s or "NULL" for s in _plain_sums()],
    "sum(d.routed_calls)", "sum(d.routed_pro_calls)", "NULL", "NULL, NULL", "NULL, NULL", "NULL, NULL",
])
PARTS_SQL = {
    "metrics_modelday": MODEL_DAY_PARTS,
    "metrics_featureday": ROLE_ROWS_PARTS, "metrics_hourlyrollup": ROLE_ROWS_PARTS,
    "metrics_featurehour": ROLE_COLUMNS_PARTS, "metrics_dimensionday": ROLE_COLUMNS_PARTS,
}


def _ratio(numerator, denominator) -> float | None:
    return None if not denominator else float(numerator) / float(denominator)


def _role_cost(parts, role):
    cost, priced = parts[f"{role}_cost_usd"] or ZERO, parts[f"{role}_priced"]
    if priced is None:  # per-role priced counts are not kept in this table: go by the whole row
        priced = parts["priced_calls"]
    return cost if priced else None


def metrics_from_parts(parts: dict) -> dict:
    """SPEC 4 metrics from summed rollup counters (missing parts count as 0)."""
    p = {name: (parts.get(name) or 0) for name in PART_NAMES}
    p.update({name: parts.get(name) for name in ("triage_priced", "escalation_priced", "shadow_priced")})
    cost = Decimal(p["cost_usd"]) if p["priced_calls"] else None
    return {
        "calls": int(p["calls"]),
        "requests": int(p["requests"]),
        "input_tokens": int(p["input_tokens"]),
        "output_tokens": int(p["output_tokens"]),
        "cost_usd": cost,
        "cost_per_call_usd": cost / p["priced_calls"] if cost is not None else None,
        "pro_share": _ratio(p["routed_pro_calls"], p["routed_calls"]),
        "uncapped_share": _ratio(p["uncapped_calls"], p["cap_known_calls"]),
        "cap_hit_share": _ratio(p["cap_hit_calls"], p["calls"]),
        "output_tokens_per_call": _ratio(p["output_tokens"], p["calls"]),
        "escalation_rate": _ratio(p["escalation_calls"], p["requests"]),
        "triage_cost_usd": _role_cost(p, "triage"),
        "escalation_cost_usd": _role_cost(p, "escalation"),
        "shadow_cost_usd": _role_cost(p, "shadow"),
        "unpriced_calls": int(p["unpriced_calls"]),
        "error_calls": int(p["error_calls"]),
    }


def _sum_parts(table, *, group_cols, where, params) -> dict:
    """{group key tuple: parts dict} summed over `table` (alias d)."""
    groups = ", ".join(group_cols)
    sql = f"SELECT {groups}, {PARTS_SQL[table]} FROM {table} d WHERE {where} GROUP BY {groups}"
    width = len(group_cols)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {tuple(row[:width]): dict(zip(PART_NAMES, row[width:], strict=True)) for row in cursor.fetchall()}


def local_days(project, start: dt.datetime, end: dt.datetime) -> tuple[dt.date, dt.date]:
    """[first, last) project-timezone days of a day-floored range."""
    tzinfo = project.tzinfo
    return start.astimezone(tzinfo).date(), end.astimezone(tzinfo).date()


def _day_filter(project, first, last, environment, attrs=None, table="metrics_featureday", feature_id=None):
    where = ["d.project_id = %(project_id)s", "d.day >= %(first)s", "d.day < %(last)s"]
    params = {"project_id": project.pk, "first": first, "last": last}
    if feature_id is not None:
        where.append("d.feature_id = %(feature_id)s")
        params["feature_id"] = feature_id
    if environment:
        where.append("d.environment = %(environment)s")
        params["environment"] = environment
    if attrs and table == "metrics_dimensionday":
        (dimension, value), = attrs.items()
        where += ["d.dimension = %(dimension)s", "d.value = %(value)s"]
        params.update(dimension=dimension, value=value)
    return " AND ".join(where), params


def _daily_table(attrs) -> str:
    return "metrics_dimensionday" if attrs else "metrics_featureday"


def _histograms_by_feature(project, first, last, environment, feature_id=None) -> dict:
    """{feature_id: {"latency": hist, "ttft": hist}} merged over the days, from the narrow
    FeatureLatencyDay table."""
    where, params = _day_filter(project, first, last, environment, feature_id=feature_id)
    sql = (f"SELECT d.feature_id, cw_hist_sum(d.latency_hist), cw_hist_sum(d.ttft_hist) "
           f"FROM metrics_featurelatencyday d WHERE {where} GROUP BY 1")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {feature_id: {"latency": latency, "ttft": ttft} for feature_id, latency, ttft in cursor.fetchall()}


def _percentiles(hists: dict | None) -> dict:
    hists = hists or {}
    return {f"{kind}_p{int(q * 100)}_ms": buckets.quantile(hists.get(kind), q)
            for kind in ("latency", "ttft") for q in (0.5, 0.95)}


def _pro_share_changes(project, end_day, environment, attrs, feature_id=None) -> dict:
    """{feature_id: pro_share over the 7 days before end minus over the 28 days before those}."""
    table = _daily_table(attrs)
    recent_from, base_from = end_day - dt.timedelta(days=7), end_day - dt.timedelta(days=35)
    where, params = _day_filter(project, base_from, end_day, environment, attrs, table, feature_id)
    params["recent_from"] = recent_from
    routed, pro = ("d.routed_calls", "d.routed_pro_calls") if attrs else (
        f"d.calls * ({ROUTED})::int", f"d.calls * ({ROUTED} AND d.tier = 'pro')::int")
    sql = f"""SELECT d.feature_id,
        sum({pro}) FILTER (WHERE d.day >= %(recent_from)s), sum({routed}) FILTER (WHERE d.day >= %(recent_from)s),
        sum({pro}) FILTER (WHERE d.day < %(recent_from)s), sum({routed}) FILTER (WHERE d.day < %(recent_from)s)
        FROM {table} d WHERE {where} GROUP BY 1"""
    changes = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for feature_id, recent_pro, recent_all, base_pro, base_all in cursor.fetchall():
            recent, base = _ratio(recent_pro or 0, recent_all), _ratio(base_pro or 0, base_all)
            changes[feature_id] = None if recent is None or base is None else recent - base
    return changes


def feature_metrics(*, project, start, end, environment=None, attrs=None, feature=None) -> list[dict]:
    """One SPEC 4 row per feature of the project (features without calls in range included),
    most expensive first; only `feature`'s row when a name is given. With an attr filter,
    latency/ttft percentiles are None (histograms are not kept per dimension value)."""
    first, last = local_days(project, start, end)
    table = _daily_table(attrs)
    features = project.features.all() if feature is None else project.features.filter(name=feature)
    feature_id = None if feature is None else _feature_id(project, feature)
    where, params = _day_filter(project, first, last, environment, attrs, table, feature_id)
    parts = _sum_parts(table, group_cols=["d.feature_id"], where=where, params=params)
    hists = {} if attrs else _histograms_by_feature(project, first, last, environment, feature_id)
    changes = _pro_share_changes(project, last, environment, attrs, feature_id)
    rows = []
    for feature in features:
        row = {"feature": feature.name, "muted": feature.muted, "expected_pro_share": feature.expected_pro_share}
        row.update(metrics_from_parts(parts.get((feature.pk,), {})))
        row["pro_share_change"] = changes.get(feature.pk)
        row.update(_percentiles(None if attrs else hists.get(feature.pk)))
        rows.append(row)
    rows.sort(key=lambda r: (-(r["cost_usd"] or ZERO), -r["calls"], r["feature"]))
    return rows


# --- timeseries -------------------------------------------------------------------------

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
    return [dt.datetime.combine(first + dt.timedelta(days=i), dt.time(), tzinfo=tzinfo)
            for i in range((last - first).days)]


def _feature_id(project, name):
    """The pk of a feature given by name (-1 when there is none), or of a Feature instance as is."""
    if name is None:
        return None
    if isinstance(name, Feature):
        return name.pk
    feature = project.features.filter(name=name).only("pk").first()
    return feature.pk if feature else -1


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
    (shares None on empty buckets). Timestamps: UTC hours, or local midnights for days."""
    table, bucket_expr, group_expr = _series_source(project, granularity=granularity, group_by=group_by,
                                                    attrs=attrs)
    where = ["d.project_id = %(project_id)s"]
    params = {"project_id": project.pk, "tz": project.timezone}
    if table in ("metrics_dimensionday", "metrics_featureday", "metrics_modelday"):
        params["first"], params["last"] = local_days(project, start, end)
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
    if environment:
        where.append("d.environment = %(environment)s")
        params["environment"] = environment
    if feature is not None:
        where.append("d.feature_id = %(feature_id)s")
        params["feature_id"] = _feature_id(project, feature)
    cols = [bucket_expr] + ([group_expr] if group_expr else [])
    parts = _sum_parts(table, group_cols=cols, where=" AND ".join(where), params=params)
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
            bucket = dt.datetime.combine(bucket, dt.time(), tzinfo=tzinfo)
        by_bucket[(bucket, key[1] if grouped else None)] = value
    points = []
    for bucket in bucket_starts(project, start, end, granularity):
        for group in groups:
            point = {"t": bucket, "value": _metric_value(metric, by_bucket.get((bucket, group), {}))}
            if grouped:
                point["group"] = group
            points.append(point)
    return points


# --- models, dimensions, overview ---------------------------------------------------------

def model_metrics(*, project, start, end, environment=None) -> list[dict]:
    """Per (model, tier): calls, tokens, cost, unpriced calls and where its price comes from."""
    first, last = local_days(project, start, end)
    where, params = _day_filter(project, first, last, environment)
    sql = f"""SELECT d.model, d.tier, sum(d.calls), sum(d.input_tokens), sum(d.output_tokens), sum(d.cost_usd),
                     sum(d.priced_calls), sum(d.unpriced_calls), sum(d.client_priced_calls)
              FROM metrics_modelday d WHERE {where} GROUP BY 1, 2"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    sources = _price_sources(project, {row[0] for row in rows})
    result = []
    for model, tier, calls, input_tokens, output_tokens, cost, priced, unpriced, client_priced in rows:
        source = sources.get(model) or ("client" if client_priced else "none")
        result.append({"model": model, "tier": tier, "price_source": source, "calls": int(calls),
                       "input_tokens": int(input_tokens), "output_tokens": int(output_tokens),
                       "cost_usd": cost if priced else None, "priced_calls": int(priced),
                       "unpriced_calls": int(unpriced), "client_priced_calls": int(client_priced)})
    result.sort(key=lambda r: (-(r["cost_usd"] or ZERO), -r["calls"], r["model"], r["tier"]))
    return result


def _price_sources(project, models) -> dict:
    """{model: 'override' | 'catalogue'} for models with a standard price in force now."""
    from ingest.pricing import PriceBook

    if not models:
        return {}
    book, now = PriceBook.load(project=project, models=models), timezone.now()
    sources = {}
    for model in models:
        price = book.match(model=model, provider="", service_tier="standard", ts=now).price
        if price is not None:
            sources[model] = "override" if price.is_override else "catalogue"
    return sources


def dimension_breakdown(*, project, dimension, start, end, feature=None, environment=None) -> list[dict]:
    """Per value of a declared dimension: cost, calls, pro_share (cost per end customer)."""
    return dimension_breakdowns(project=project, dimensions=[dimension], start=start, end=end, feature=feature,
                                environment=environment)[dimension]


def dimension_breakdowns(*, project, dimensions, start, end, feature=None, environment=None) -> dict[str, list]:
    """dimension_breakdown for several dimensions at once, in one query: {dimension: rows}.
    `feature` is a name or a Feature."""
    dimensions = list(dimensions)
    result = {dimension: [] for dimension in dimensions}
    if not dimensions:
        return result
    first, last = local_days(project, start, end)
    where, params = _day_filter(project, first, last, environment)
    where += " AND d.dimension = ANY(%(dimensions)s)"
    params["dimensions"] = dimensions
    if feature is not None:
        where += " AND d.feature_id = %(feature_id)s"
        params["feature_id"] = _feature_id(project, feature)
    parts = _sum_parts("metrics_dimensionday", group_cols=["d.dimension", "d.value"], where=where, params=params)
    for (dimension, value), part in parts.items():
        m = metrics_from_parts(part)
        result[dimension].append({"value": value, "cost_usd": m["cost_usd"], "calls": m["calls"],
                                  "pro_share": m["pro_share"], "unpriced_calls": m["unpriced_calls"]})
    for rows in result.values():
        rows.sort(key=lambda r: (-(r["cost_usd"] or ZERO), -r["calls"], r["value"]))
    return result


def _month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    first = day.replace(day=1)
    return first, first + dt.timedelta(days=calendar.monthrange(first.year, first.month)[1])


def overview(*, project, now=None, environment=None, top=5) -> dict:
    """Month-to-date spend and forecast vs last month, Lite/Pro share, top features, unpriced calls."""
    now = now or timezone.now()
    tzinfo = project.tzinfo
    today = now.astimezone(tzinfo).date()
    month_first, month_next = _month_bounds(today)
    last_first, _ = _month_bounds(month_first - dt.timedelta(days=1))
    # Change = the last 7 full days against the 7 before; today's partial day would make
    # every feature look cheaper in the morning.
    week_from, prev_week_from = today - dt.timedelta(days=7), today - dt.timedelta(days=14)
    first = min(last_first, prev_week_from)
    where, params = _day_filter(project, first, today + dt.timedelta(days=1), environment)
    params.update(month_first=month_first, week_from=week_from)
    mtd = "d.day >= %(month_first)s"
    sql = f"""SELECT d.feature_id,
        sum(d.cost_usd) FILTER (WHERE {mtd}), sum(d.priced_calls) FILTER (WHERE {mtd}),
        sum(d.calls) FILTER (WHERE {mtd}), sum(d.unpriced_calls) FILTER (WHERE {mtd}),
        sum(d.calls) FILTER (WHERE {mtd} AND {ROUTED}),
        sum(d.calls) FILTER (WHERE {mtd} AND {ROUTED} AND d.tier = 'pro'),
        sum(d.calls) FILTER (WHERE {mtd} AND {ROUTED} AND d.tier = 'lite'),
        sum(d.cost_usd) FILTER (WHERE d.day < %(month_first)s AND d.day >= %(last_first)s),
        sum(d.priced_calls) FILTER (WHERE d.day < %(month_first)s AND d.day >= %(last_first)s),
        sum(d.cost_usd) FILTER (WHERE d.day >= %(week_from)s AND d.day < %(today)s),
        sum(d.cost_usd) FILTER (WHERE d.day < %(week_from)s AND d.day >= %(prev_week_from)s)
        FROM metrics_featureday d WHERE {where} GROUP BY 1"""
    params.update(last_first=last_first, prev_week_from=prev_week_from, today=today)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    names = dict(project.features.values_list("pk", "name"))
    totals = [sum((row[i] or 0) for row in rows) for i in range(1, 12)]
    (spent, priced, calls, unpriced, routed, routed_pro, routed_lite, last_spent, last_priced, _w, _pw) = totals
    month_start_at = dt.datetime.combine(month_first, dt.time(), tzinfo=tzinfo)
    month_end_at = dt.datetime.combine(month_next, dt.time(), tzinfo=tzinfo)
    elapsed = Decimal((now - month_start_at).total_seconds())
    length = Decimal((month_end_at - month_start_at).total_seconds())
    spent_usd = Decimal(spent) if priced else None
    features = [{"feature": names.get(row[0], "?"), "cost_usd": row[1] if row[2] else None, "calls": int(row[3] or 0),
                 "week_cost_usd": Decimal(row[10] or 0), "previous_week_cost_usd": Decimal(row[11] or 0)}
                for row in rows]
    for feature in features:
        feature["change_usd"] = feature["week_cost_usd"] - feature["previous_week_cost_usd"]
    by_cost = sorted((f for f in features if f["cost_usd"]), key=lambda f: (-f["cost_usd"], f["feature"]))
    by_change = sorted((f for f in features if f["change_usd"]), key=lambda f: (-abs(f["change_usd"]), f["feature"]))
    return {
        "month_start": month_first,
        "spent_usd": spent_usd,
        "forecast_usd": spent_usd * length / elapsed if spent_usd is not None and elapsed > 0 else None,
        "last_month_usd": Decimal(last_spent) if last_priced else None,
        "calls": int(calls),
        "pro_share": _ratio(routed_pro, routed),
        "lite_share": _ratio(routed_lite, routed),
        "unpriced_calls": int(unpriced),
        "unpriced_models": unpriced_models(project=project, start_day=month_first, environment=environment),
        "top_by_cost": by_cost[:top],
        "top_by_change": by_change[:top],
        "data_as_of": data_as_of(project=project),
    }


def unpriced_models(*, project, start_day, environment=None) -> list[dict]:
    where, params = _day_filter(project, start_day, dt.date.max, environment)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT d.model, sum(d.unpriced_calls) FROM metrics_modelday d WHERE {where} "
                       "GROUP BY 1 HAVING sum(d.unpriced_calls) > 0 ORDER BY 2 DESC, 1", params)
        return [{"model": model, "unpriced_calls": int(count)} for model, count in cursor.fetchall()]


# --- feature page, freshness, environments -------------------------------------------------

FEATURE_DAILY_COLUMNS = [
    "day", "tier", "role", "calls", "input_tokens", "output_tokens", "cost_usd", "priced_calls", "unpriced_calls",
    "cap_known_calls", "uncapped_calls", "cap_hit_calls", "error_calls", "latency_hist", "ttft_hist",
    "output_tokens_hist",
]


def hist_matrix(hists) -> np.ndarray:
    """Histograms (lists of bucket counts, any length, None = empty) as one rows x N_BUCKETS int64
    matrix, filled in one vectorised step from their concatenation (not a slice assignment per row)."""
    hists = [hist or () for hist in hists]
    matrix = np.zeros((len(hists), buckets.N_BUCKETS), dtype=np.int64)
    lengths = np.fromiter((len(hist) for hist in hists), dtype=np.int64, count=len(hists))
    total = int(lengths.sum())
    if total:
        rows = np.repeat(np.arange(len(hists)), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        matrix[rows, np.arange(total) - starts] = np.fromiter(itertools.chain.from_iterable(hists), dtype=np.int64,
                                                              count=total)
    return matrix


def _trimmed_rows(matrix: np.ndarray) -> list[list[int]]:
    """Each row as a list cut after its last non-zero bucket (buckets.trim)."""
    nonzero = matrix != 0
    lengths = np.where(nonzero.any(axis=1), matrix.shape[1] - np.argmax(nonzero[:, ::-1], axis=1), 0)
    width = int(lengths.max()) if len(lengths) else 0
    rows = matrix[:, :width].tolist()
    return [row if length == width else row[:length] for row, length in zip(rows, lengths.tolist(), strict=True)]


def hist_sum(hists) -> list[int]:
    """buckets.merge_all(hists) (the same trimmed list) for many histograms at once."""
    hists = list(hists)
    if not hists:
        return []
    return _trimmed_rows(hist_matrix(hists).sum(axis=0, keepdims=True))[0]


def feature_daily(*, project, feature, start, end, environment=None) -> pd.DataFrame:
    """Per (day, tier, role) of one feature: counters, cost (Decimal) and merged histograms.

    Rows of several environments are merged here (counters in Python, histograms as one numpy
    matrix per column): cheaper than a SQL array-sum aggregate for the few rows per group this has.
    `feature` is a name or a Feature."""
    first, last = local_days(project, start, end)
    where, params = _day_filter(project, first, last, environment)
    params["feature_id"] = _feature_id(project, feature)
    columns = ", ".join(f"d.{c}" for c in FEATURE_DAILY_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM metrics_featureday d WHERE {where} "
                       "AND d.feature_id = %(feature_id)s ORDER BY d.day, d.tier, d.role", params)
        rows = cursor.fetchall()
    merged: list[list] = []
    starts: list[int] = []  # rows come ordered by (day, tier, role): each group is a run of rows
    for i, row in enumerate(rows):
        if merged and tuple(merged[-1][:3]) == row[:3]:
            last_row = merged[-1]
            for j in range(3, 13):
                last_row[j] += row[j]
        else:
            merged.append(list(row))
            starts.append(i)
    if len(merged) < len(rows):  # several environments: add their histograms up, all groups at once
        for j in range(13, 16):
            totals = np.add.reduceat(hist_matrix([row[j] for row in rows]), starts, axis=0)
            for target, hist in zip(merged, _trimmed_rows(totals), strict=True):
                target[j] = hist
    if not merged:
        frame = pd.DataFrame([], columns=FEATURE_DAILY_COLUMNS)
        for column in FEATURE_DAILY_COLUMNS[3:13]:
            if column != "cost_usd":
                frame[column] = frame[column].astype("int64")
        return frame
    values = list(zip(*merged, strict=True))
    data = {}
    for i, column in enumerate(FEATURE_DAILY_COLUMNS):
        if 3 <= i < 13 and column != "cost_usd":
            data[column] = np.array(values[i], dtype=np.int64)
        else:
            data[column] = pd.Series(values[i], dtype=object)
    return pd.DataFrame(data)


ROUTED_ROLES = ("primary", "escalation")


def feature_daily_calls(*, project, feature, first_day, last_day, environment=None) -> list[tuple]:
    """[(day, tier, role, calls)] of one feature (a name or a Feature) over [first_day, last_day),
    summed over environments: the narrow read behind the feature page's Pro-share baseline."""
    where, params = _day_filter(project, first_day, last_day, environment, feature_id=_feature_id(project, feature))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT d.day, d.tier, d.role, sum(d.calls)::bigint FROM metrics_featureday d WHERE {where} "
                       "GROUP BY 1, 2, 3", params)
        return cursor.fetchall()


def feature_metrics_from_daily(*, feature, frame: pd.DataFrame, calls: list[tuple], last_day: dt.date) -> dict:
    """feature_metrics' row of one feature, from data the feature page has already read instead of
    three more queries: `frame` is feature_daily over the range, `calls` (day, tier, role, calls)
    rows covering at least the 35 days before `last_day` (for pro_share_change).

    Same parts as ROLE_ROWS_PARTS sums in SQL (a role's priced count is None when the role has no
    rows, as a FILTERed SQL sum is NULL), same metrics_from_parts; the latency/ttft percentiles come
    from the frame's histograms merged over tiers and roles, which is what FeatureLatencyDay holds."""
    parts = dict.fromkeys(PART_NAMES, 0)
    parts["cost_usd"] = ZERO
    for role in ("triage", "escalation", "shadow"):
        parts[f"{role}_cost_usd"], parts[f"{role}_priced"] = None, None
    latency = ttft = None
    if not frame.empty:
        plain = ("calls", "input_tokens", "output_tokens", "cost_usd", "priced_calls", "unpriced_calls",
                 "cap_known_calls", "uncapped_calls", "cap_hit_calls", "error_calls")
        columns = [frame[c].tolist() for c in ("tier", "role", *plain)]
        for tier, role, *values in zip(*columns, strict=True):
            for name, value in zip(plain, values, strict=True):
                parts[name] += value
            row_calls, row_cost, row_priced = values[0], values[3], values[4]
            if role == "primary":
                parts["requests"] += row_calls
            if role in ROUTED_ROLES:
                parts["routed_calls"] += row_calls
                if tier == "pro":
                    parts["routed_pro_calls"] += row_calls
            if role == "escalation":
                parts["escalation_calls"] += row_calls
            if role in ("triage", "escalation", "shadow"):
                parts[f"{role}_cost_usd"] = (parts[f"{role}_cost_usd"] or ZERO) + row_cost
                parts[f"{role}_priced"] = (parts[f"{role}_priced"] or 0) + row_priced
        latency, ttft = hist_sum(frame["latency_hist"]), hist_sum(frame["ttft_hist"])
    row = {"feature": feature.name, "muted": feature.muted, "expected_pro_share": feature.expected_pro_share}
    row.update(metrics_from_parts(parts))
    recent_from, base_from = last_day - dt.timedelta(days=7), last_day - dt.timedelta(days=35)
    recent_pro = recent_all = base_pro = base_all = 0
    seen = False
    for day, tier, role, count in calls:
        if not base_from <= day < last_day:
            continue
        seen = True
        if role not in ROUTED_ROLES:
            continue
        if day >= recent_from:
            recent_all += count
            recent_pro += count if tier == "pro" else 0
        else:
            base_all += count
            base_pro += count if tier == "pro" else 0
    recent, base = _ratio(recent_pro, recent_all), _ratio(base_pro, base_all)
    row["pro_share_change"] = None if not seen or recent is None or base is None else recent - base
    row.update(_percentiles(None if frame.empty else {"latency": latency, "ttft": ttft}))
    return row


def data_as_of(*, project) -> dt.datetime | None:
    """When the rollups last caught up with every committed event of the project."""
    state = RollupState.objects.filter(project=project).only("refreshed_at").first()
    return state.refreshed_at if state else None


def environments(*, project) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT environment FROM metrics_featureday WHERE project_id = %s ORDER BY 1",
                       [project.pk])
        return [row[0] for row in cursor.fetchall()]

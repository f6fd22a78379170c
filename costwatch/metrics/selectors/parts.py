"""Summed rollup counters ("parts") and the one place metrics are computed from them.

The metrics (docs/rollups.md#metric-definitions) are computed in one place, `metrics_from_parts`,
from summed rollup counters, so the API, the pages and the tests cannot disagree:
- pro_share = Pro-tier primary+escalation calls / all primary+escalation calls (unknown tier
  counts in the denominator); uncapped_share = uncapped / cap-known calls; cap_hit_share =
  finish 'length' / calls; escalation_rate = escalation / primary calls;
- cost is a Decimal, None when nothing in it is priced; shares are None on a zero denominator.
Daily data (FeatureDay, ModelDay, DimensionDay) is in project-timezone days; hourly data
(FeatureHour, HourlyRollup) in UTC hours.
"""

import datetime as dt
from decimal import Decimal

from costwatch.dbrouting import read_connection
from ingest.models import Feature

from ..definitions import routed_sql
from ..windows import hours_filter

ZERO = Decimal(0)


PART_NAMES = (
    "calls", "requests", "input_tokens", "output_tokens", "cost_usd", "priced_calls", "unpriced_calls",
    "cap_known_calls", "uncapped_calls", "cap_hit_calls", "error_calls", "routed_calls", "routed_pro_calls",
    "escalation_calls", "triage_cost_usd", "triage_priced", "escalation_cost_usd", "escalation_priced",
    "shadow_cost_usd", "shadow_priced",
)


_PLAIN = ("calls", None, "input_tokens", "output_tokens", "cost_usd", "priced_calls", "unpriced_calls",
          "cap_known_calls", "uncapped_calls", "cap_hit_calls", "error_calls")


ROUTED = routed_sql("d")


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
    """The metrics (docs/rollups.md#metric-definitions) from summed rollup counters (missing parts count as 0)."""
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
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        return {tuple(row[:width]): dict(zip(PART_NAMES, row[width:], strict=True)) for row in cursor.fetchall()}


def local_days(project, start: dt.datetime, end: dt.datetime) -> tuple[dt.date, dt.date]:
    """[first, last) project-timezone days that overlap [start, end)."""
    tzinfo = project.tzinfo
    last = (end - dt.timedelta(microseconds=1)).astimezone(tzinfo).date() + dt.timedelta(days=1)
    return start.astimezone(tzinfo).date(), last


def _add_parts(target: dict, parts: dict) -> dict:
    """Add summed parts into `target` (None = no rows: stays None only when both are None)."""
    for name, value in parts.items():
        if value is None:
            target.setdefault(name, None)
        else:
            target[name] = value if target.get(name) is None else target[name] + value
    return target


def _merge_part_maps(*maps: dict) -> dict:
    merged: dict = {}
    for parts_by_key in maps:
        for key, parts in parts_by_key.items():
            _add_parts(merged.setdefault(key, {}), parts)
    return merged


def _hour_filter(project, window, environment, feature_id=None) -> tuple[str, dict]:
    """WHERE (alias d) of an hourly rollup table over the window's edge hours."""
    condition, params = hours_filter(window)
    where = ["d.project_id = %(project_id)s", condition]
    params.update(project_id=project.pk, tz=project.timezone)
    _scope_where(where, params, environment=environment, feature_id=feature_id)
    return " AND ".join(where), params


def _scope_where(where: list, params: dict, *, environment, feature_id) -> None:
    """Add the feature (an id) and environment conditions, where given, to a WHERE on alias d."""
    if feature_id is not None:
        where.append("d.feature_id = %(feature_id)s")
        params["feature_id"] = feature_id
    if environment:
        where.append("d.environment = %(environment)s")
        params["environment"] = environment


def _window_parts(project, window, *, day_table, hour_table, day_group, hour_group, environment, attrs=None,
                  feature_id=None) -> dict:
    """Parts per group over an hour-exact window (costwatch.metrics.windows): whole days from
    `day_table`, edge hours from `hour_table` (the group expressions of both give the same keys)."""
    maps = []
    if window.has_days:
        where, params = _day_filter(project, window.first_day, window.last_day, environment, attrs, day_table,
                                    feature_id)
        maps.append(_sum_parts(day_table, group_cols=day_group, where=where, params=params))
    if window.edges:
        where, params = _hour_filter(project, window, environment, feature_id)
        maps.append(_sum_parts(hour_table, group_cols=hour_group, where=where, params=params))
    return _merge_part_maps(*maps)


# The project-timezone day an hourly row (alias d) falls in; _hour_filter's params carry %(tz)s.
HOUR_LOCAL_DAY = "(d.hour AT TIME ZONE %(tz)s)::date"


def window_sums(project, window, *, day_table, hour_table, day_keys, hour_keys, sums, environment=None,
                feature_id=None) -> dict[tuple, list]:
    """{key: [total, ...]} of the SQL sums (alias d) over an hour-exact window: whole days from
    `day_table`, the edge hours from `hour_table`; `day_keys` and `hour_keys` give the same key
    from each table (e.g. `d.day` and HOUR_LOCAL_DAY)."""
    queries = []
    if window.has_days:
        queries.append((day_table, day_keys, *_day_filter(project, window.first_day, window.last_day, environment,
                                                          table=day_table, feature_id=feature_id)))
    if window.edges:
        queries.append((hour_table, hour_keys, *_hour_filter(project, window, environment, feature_id)))
    totals: dict[tuple, list] = {}
    with read_connection().cursor() as cursor:
        for table, keys, where, params in queries:
            group = ", ".join(keys)
            cursor.execute(f"SELECT {group}, {', '.join(sums)} FROM {table} d WHERE {where} GROUP BY {group}", params)
            for row in cursor.fetchall():
                key, values = tuple(row[:len(keys)]), row[len(keys):]
                known = totals.get(key)
                totals[key] = list(values) if known is None else [a + b for a, b in zip(known, values, strict=True)]
    return totals


def _day_filter(project, first, last, environment, attrs=None, table="metrics_featureday", feature_id=None):
    where = ["d.project_id = %(project_id)s", "d.day >= %(first)s", "d.day < %(last)s"]
    params = {"project_id": project.pk, "first": first, "last": last}
    _scope_where(where, params, environment=environment, feature_id=feature_id)
    if attrs and table == "metrics_dimensionday":
        (dimension, value), = attrs.items()
        where += ["d.dimension = %(dimension)s", "d.value = %(value)s"]
        params.update(dimension=dimension, value=value)
    return " AND ".join(where), params


def _daily_table(attrs) -> str:
    return "metrics_dimensionday" if attrs else "metrics_featureday"


def _feature_id(project, name):
    """The pk of a feature given by name (-1 when there is none), or of a Feature instance as is."""
    if name is None:
        return None
    if isinstance(name, Feature):
        return name.pk
    feature = project.features.filter(name=name).only("pk").first()
    return feature.pk if feature else -1

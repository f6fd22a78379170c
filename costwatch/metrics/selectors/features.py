"""The features list: one row of metrics per feature, with percentiles and the Pro share's change."""


from django.db import connection

from .. import buckets
from ..definitions import WINDOW_7D, WINDOW_35D
from .parts import (
    ROUTED,
    ZERO,
    _daily_table,
    _day_filter,
    _feature_id,
    _ratio,
    _sum_parts,
    local_days,
    metrics_from_parts,
)


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
    recent_from, base_from = end_day - WINDOW_7D, end_day - WINDOW_35D
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
    """One row of metrics per feature of the project (features without calls in range included),
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

"""The features list: one row of metrics per feature, with percentiles and the Pro share's change,
over an hour-exact window (whole days from daily rollups, the edges from hourly ones)."""

from costwatch.dbrouting import read_connection

from .. import buckets
from ..windows import shifted_back, split
from .histograms import hist_sum
from .parts import (
    HOUR_LOCAL_DAY,
    ZERO,
    _daily_table,
    _day_filter,
    _feature_id,
    _hour_filter,
    _ratio,
    _window_parts,
    metrics_from_parts,
    window_sums,
)


def _histograms_by_feature(project, window, environment, feature_id=None) -> dict:
    """{feature_id: {"latency": hist, "ttft": hist}} merged over the window: whole days from the
    narrow FeatureLatencyDay table, edge hours from FeatureLatencyHour; histograms add bucket by bucket."""
    queries = []
    if window.has_days:
        where, params = _day_filter(project, window.first_day, window.last_day, environment, feature_id=feature_id)
        queries.append(("metrics_featurelatencyday", where, params))
    if window.edges:
        where, params = _hour_filter(project, window, environment, feature_id)
        queries.append(("metrics_featurelatencyhour", where, params))
    parts: dict = {}
    with read_connection().cursor() as cursor:
        for table, where, params in queries:
            cursor.execute(f"SELECT d.feature_id, cw_hist_sum(d.latency_hist), cw_hist_sum(d.ttft_hist) "
                           f"FROM {table} d WHERE {where} GROUP BY 1", params)
            for feature_id, latency, ttft in cursor.fetchall():
                parts.setdefault(feature_id, []).append((latency, ttft))
    return {feature_id: {"latency": hist_sum(h[0] for h in hists), "ttft": hist_sum(h[1] for h in hists)}
            for feature_id, hists in parts.items()}


def _percentiles(hists: dict | None) -> dict:
    hists = hists or {}
    return {f"{kind}_p{int(q * 100)}_ms": buckets.quantile(hists.get(kind), q)
            for kind in ("latency", "ttft") for q in (0.5, 0.95)}


def pro_share_changes(project, end, environment=None, attrs=None, feature_id=None) -> dict:
    """{feature_id: pro_share over the 7 days before `end` minus over the 28 days before those},
    each window hour-exact (whole days from FeatureDay/DimensionDay, edge hours from FeatureHour;
    days are wall-clock days in the project timezone)."""
    tzinfo = project.tzinfo
    recent_from, base_from = shifted_back(end, tzinfo, 7), shifted_back(end, tzinfo, 35)
    table = _daily_table(attrs)
    shares = []
    for low, high in ((recent_from, end), (base_from, recent_from)):
        parts = _window_parts(project, split(project, low, high), day_table=table, hour_table="metrics_featurehour",
                              day_group=["d.feature_id"], hour_group=["d.feature_id"], environment=environment,
                              attrs=attrs, feature_id=feature_id)
        shares.append({key[0]: _ratio(p.get("routed_pro_calls") or 0, p.get("routed_calls"))
                       for key, p in parts.items()})
    recent, base = shares
    return {fid: None if recent.get(fid) is None or base.get(fid) is None else recent[fid] - base[fid]
            for fid in set(recent) | set(base)}


def feature_metrics(*, project, start, end, environment=None, attrs=None, feature=None) -> list[dict]:
    """One row of metrics per feature of the project (features without calls in range included),
    most expensive first; only `feature`'s row when a name is given. With an attr filter,
    latency/ttft percentiles are None (histograms are not kept per dimension value)."""
    window = split(project, start, end)
    table = _daily_table(attrs)
    features = project.features.all() if feature is None else project.features.filter(name=feature)
    feature_id = None if feature is None else _feature_id(project, feature)
    parts = _window_parts(project, window, day_table=table, hour_table="metrics_hourlyrollup",
                          day_group=["d.feature_id"], hour_group=["d.feature_id"], environment=environment,
                          attrs=attrs, feature_id=feature_id)
    hists = {} if attrs else _histograms_by_feature(project, window, environment, feature_id)
    changes = pro_share_changes(project, end, environment, attrs, feature_id)
    rows = []
    for feature in features:
        row = {"feature": feature.name, "muted": feature.muted, "expected_pro_share": feature.expected_pro_share}
        row.update(metrics_from_parts(parts.get((feature.pk,), {})))
        row["pro_share_change"] = changes.get(feature.pk)
        row.update(_percentiles(None if attrs else hists.get(feature.pk)))
        rows.append(row)
    rows.sort(key=lambda r: (-(r["cost_usd"] or ZERO), -r["calls"], r["feature"]))
    return rows


def feature_daily_costs(*, project, start, end, environment=None) -> dict[int, dict]:
    """{feature_id: {project-timezone day: cost}} over exactly [start, end) (the Features page's
    sparklines): whole days from FeatureDay, the partial days at the edges from FeatureHour, so an
    edge day's point covers only the window's hours."""
    sums = window_sums(project, split(project, start, end), day_table="metrics_featureday",
                       hour_table="metrics_featurehour", day_keys=["d.feature_id", "d.day"],
                       hour_keys=["d.feature_id", HOUR_LOCAL_DAY], sums=["sum(d.cost_usd)"], environment=environment)
    costs: dict[int, dict] = {}
    for (feature_id, day), (cost,) in sums.items():
        costs.setdefault(feature_id, {})[day] = cost
    return costs

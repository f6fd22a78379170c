"""The feature page's reads: its daily frame, and its metrics row derived from that frame."""

import datetime as dt

import numpy as np
import pandas as pd

from costwatch.dbrouting import read_connection

from ..definitions import ROUTED_ROLES, day_start
from ..models import FeatureDay
from ..windows import split
from .features import _percentiles
from .histograms import _trimmed_rows, hist_matrix, hist_sum
from .parts import (
    HOUR_LOCAL_DAY,
    PART_NAMES,
    ZERO,
    _day_filter,
    _feature_id,
    _hour_filter,
    metrics_from_parts,
    window_sums,
)

FEATURE_DAILY_COLUMNS = [
    "day", "tier", "role", "calls", "input_tokens", "output_tokens", "cost_usd", "priced_calls", "unpriced_calls",
    "cap_known_calls", "uncapped_calls", "cap_hit_calls", "error_calls", "latency_hist", "ttft_hist",
    "output_tokens_hist",
]


def feature_daily(*, project, feature, start, end, environment=None) -> pd.DataFrame:
    """Per (day, tier, role) of one feature: counters, cost (Decimal) and merged histograms.

    Rows of several environments are merged here (counters in Python, histograms as one numpy
    matrix per column): cheaper than a SQL array-sum aggregate for the few rows per group this has.
    `feature` is a name or a Feature. The window is hour-exact: whole days from FeatureDay, the
    partial days at its edges from HourlyRollup (their rows carry the local day they fall in)."""
    window = split(project, start, end)
    feature_id = _feature_id(project, feature)
    rows = []
    with read_connection().cursor() as cursor:
        if window.has_days:
            where, params = _day_filter(project, window.first_day, window.last_day, environment, feature_id=feature_id)
            columns = ", ".join(f"d.{c}" for c in FEATURE_DAILY_COLUMNS)
            cursor.execute(f"SELECT {columns} FROM metrics_featureday d WHERE {where}", params)
            rows += cursor.fetchall()
        if window.edges:
            where, params = _hour_filter(project, window, environment, feature_id)
            counters = ", ".join(f"sum(d.{c})" + ("" if c == "cost_usd" else "::bigint")
                                 for c in FEATURE_DAILY_COLUMNS[3:13])
            hists = ", ".join(f"cw_hist_sum(d.{c})" for c in FEATURE_DAILY_COLUMNS[13:])
            cursor.execute(f"SELECT {HOUR_LOCAL_DAY}, d.tier, d.role, {counters}, {hists} "
                           f"FROM metrics_hourlyrollup d WHERE {where} GROUP BY d.environment, 1, 2, 3", params)
            rows += cursor.fetchall()
    rows.sort(key=lambda row: row[:3])
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


def feature_daily_calls(*, project, feature, first_day, last_day=None, end=None, environment=None) -> list[tuple]:
    """[(day, tier, role, calls)] of one feature (a name or a Feature) over [first_day, last_day),
    or from first_day's midnight to the hour-exact `end` (the last day's calls only up to it),
    summed over environments: the narrow read behind the feature page's Pro-share baseline."""
    tzinfo = project.tzinfo
    window = split(project, day_start(first_day, tzinfo), end or day_start(last_day, tzinfo))
    sums = window_sums(project, window, day_table="metrics_featureday", hour_table="metrics_hourlyrollup",
                       day_keys=["d.day", "d.tier", "d.role"], hour_keys=[HOUR_LOCAL_DAY, "d.tier", "d.role"],
                       sums=["sum(d.calls)::bigint"], environment=environment,
                       feature_id=_feature_id(project, feature))
    return [(*key, calls) for key, (calls,) in sums.items()]


def feature_output_tokens_by_model(*, project, feature, start, end, environment=None) -> dict[tuple, int]:
    """{(model, tier): output tokens} of one feature over exactly [start, end): whole days from
    ModelDay, the edge hours from HourlyRollup (the what-if panel's price weights)."""
    sums = window_sums(project, split(project, start, end), day_table="metrics_modelday",
                       hour_table="metrics_hourlyrollup", day_keys=["d.model", "d.tier"],
                       hour_keys=["d.model", "d.tier"], sums=["sum(d.output_tokens)::bigint"],
                       environment=environment, feature_id=_feature_id(project, feature))
    return {key: tokens for key, (tokens,) in sums.items()}


def feature_metrics_from_daily(*, feature, frame: pd.DataFrame, pro_share_change: float | None) -> dict:
    """feature_metrics' row of one feature, from data the feature page has already read instead of
    more queries: `frame` is feature_daily over the range; `pro_share_change` is the caller's
    (pro_share_changes, as feature_metrics has it).

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
    row["pro_share_change"] = pro_share_change
    row.update(_percentiles(None if frame.empty else {"latency": latency, "ttft": ttft}))
    return row


def feature_first_day(*, project, feature) -> dt.date | None:
    """The local day of the feature's first call (rollups are kept forever; the feature row's own
    first_seen_at is when the server learned the name, which a backfill makes later)."""
    return (FeatureDay.objects.filter(project=project, feature=feature).order_by("day")
            .values_list("day", flat=True).first())

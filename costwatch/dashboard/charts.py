"""Plotly figures for the pages, built in Python from pandas frames of rollup rows.

Figures are plain dicts ({"data": [...], "layout": {...}}) rather than `go.Figure` objects:
validating a go.Figure costs tens of milliseconds per chart, and the pages only need the JSON
that plotly.js (served from static/) draws. Money is Decimal in the frames and becomes a float
only here, for drawing.
"""

import datetime as dt

import numpy as np
import pandas as pd
from django.utils.html import escape

from costwatch.metrics import buckets, selectors
from costwatch.metrics.definitions import ROUTED_ROLES, WINDOW_7D, WINDOW_28D

COLORS = {"lite": "#3b82f6", "pro": "#d9480f", "unknown": "#9aa1b1"}
SERIES_COLORS = {
    ("lite", "primary"): "#3b82f6", ("lite", "triage"): "#93c5fd", ("lite", "escalation"): "#1d4ed8",
    ("lite", "shadow"): "#bfdbfe", ("pro", "primary"): "#d9480f", ("pro", "escalation"): "#f08c4f",
    ("pro", "shadow"): "#fbbf8a", ("pro", "triage"): "#9a3412",
}
ROLE_ORDER = ["primary", "escalation", "triage", "shadow"]
TIER_ORDER = ["lite", "pro", "unknown"]
FONT = {"family": "-apple-system, BlinkMacSystemFont, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif",
        "size": 12, "color": "#1d2330"}


def figure(data: list, *, title: str = "", yaxis: dict | None = None, height: int = 280, **layout) -> dict:
    base = {
        "title": {"text": title, "font": {"size": 14}, "x": 0, "xanchor": "left"} if title else None,
        "height": height, "margin": {"l": 56, "r": 16, "t": 36 if title else 12, "b": 36},
        "font": FONT, "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "y": -0.18, "x": 0, "font": {"size": 11}},
        "xaxis": {"gridcolor": "#eef0f4", "linecolor": "#e2e5ec", "type": "date"},
        "yaxis": {"gridcolor": "#eef0f4", "zerolinecolor": "#e2e5ec", "rangemode": "tozero", **(yaxis or {})},
        "hovermode": "x unified", "bargap": 0.15,
    }
    base.update(layout)
    return {"data": data, "layout": {k: v for k, v in base.items() if v is not None}}


def _day_labels(days: list[dt.date]) -> list[str]:
    return [day.isoformat() for day in days]


def _float(value) -> float | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return float(value)


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """Days in [first, last)."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days)]


# --- overview -----------------------------------------------------------------------------

def cost_by_group_figure(points: list[dict], *, title: str = "Daily cost by tier") -> dict:
    """Stacked daily bars from timeseries(group_by=...) points ({"t", "value", "group"})."""
    frame = pd.DataFrame(points, columns=["t", "value", "group"])
    data = []
    groups = sorted(frame["group"].dropna().unique(), key=lambda g: (TIER_ORDER.index(g) if g in TIER_ORDER else 9, g))
    for group in groups:
        rows = frame[frame["group"] == group]
        if not any(rows["value"]):  # e.g. unknown tier: unpriced, so no cost to stack
            continue
        data.append({"type": "bar", "name": group, "x": [t.date().isoformat() for t in rows["t"]],
                     "y": [_float(v) for v in rows["value"]], "marker": {"color": COLORS.get(group)},
                     "hovertemplate": "$%{y:,.2f}"})
    return figure(data, title=title, barmode="stack", yaxis={"tickprefix": "$"})


# --- feature page -------------------------------------------------------------------------

def feature_cost_figure(frame: pd.DataFrame, days: list[dt.date]) -> dict:
    """Daily cost stacked by tier and role (summed in plain Python: a pivot_table costs ~20 ms)."""
    position = {day: i for i, day in enumerate(days)}
    series: dict[tuple, list[float]] = {}
    if not frame.empty:
        for day, tier, role, cost in zip(frame["day"], frame["tier"], frame["role"], frame["cost_usd"], strict=True):
            if day in position:
                values = series.setdefault((tier, role), [0.0] * len(days))
                values[position[day]] += float(cost or 0)
    order = sorted(series, key=lambda c: (TIER_ORDER.index(c[0]) if c[0] in TIER_ORDER else 9,
                                          ROLE_ORDER.index(c[1]) if c[1] in ROLE_ORDER else 9))
    data = [{"type": "bar", "name": f"{tier} · {role}", "x": _day_labels(days),
             "y": [round(v, 6) for v in series[(tier, role)]],
             "marker": {"color": SERIES_COLORS.get((tier, role), COLORS.get(tier, "#9aa1b1"))},
             "hovertemplate": "$%{y:,.4f}"} for tier, role in order]
    return figure(data, title="Daily cost by tier and role", barmode="stack", yaxis={"tickprefix": "$"})


def _daily_sum(frame: pd.DataFrame, days: list[dt.date], column: str, *, roles=None, tier=None) -> np.ndarray:
    """Per day of `days`, the sum of `column` over the frame's rows (optionally of some roles / one tier).
    A plain loop over a few hundred rows: pandas groupby + reindex costs milliseconds per call."""
    totals = np.zeros(len(days))
    if frame.empty:
        return totals
    position = {day: i for i, day in enumerate(days)}
    for day, row_role, row_tier, value in zip(frame["day"].tolist(), frame["role"].tolist(),
                                              frame["tier"].tolist(), frame[column].tolist(), strict=True):
        i = position.get(day)
        if i is not None and (roles is None or row_role in roles) and (tier is None or row_tier == tier):
            totals[i] += value
    return totals


def _rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing sum over `window` days (fewer at the start)."""
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    return cumulative[ends] - cumulative[np.maximum(0, ends - window)]


def pro_share_series(frame: pd.DataFrame, days: list[dt.date], *, baseline_days: int = WINDOW_28D.days,
                     recent_days: int = WINDOW_7D.days):
    """Daily Pro share, its trailing 7-day share, and the 28-day baseline before those 7 days
    (pro_share, docs/rollups.md#metric-definitions: Pro-tier primary + escalation calls over all of them).

    `days` must start baseline_days + recent_days before the first day shown; the result covers all of
    `days` and the caller trims it. Shares are None where the denominator is 0."""
    routed = _daily_sum(frame, days, "calls", roles=ROUTED_ROLES)
    pro = _daily_sum(frame, days, "calls", roles=ROUTED_ROLES, tier="pro")
    lag = recent_days

    def baseline(values):
        shifted = np.concatenate([np.zeros(min(lag, len(values))), values[:-lag] if lag < len(values) else []])
        return _rolling_sum(shifted, baseline_days)

    return pd.DataFrame(index=days, data={
        "daily": _ratio_list(pro, routed),
        "recent": _ratio_list(_rolling_sum(pro, recent_days), _rolling_sum(routed, recent_days)),
        "baseline": _ratio_list(baseline(pro), baseline(routed)),
    })


def pro_share_figure(series: pd.DataFrame, *, expected: float | None = None) -> dict:
    x = _day_labels(list(series.index))
    data = [
        {"type": "scatter", "mode": "markers", "name": "daily", "x": x, "y": [_float(v) for v in series["daily"]],
         "marker": {"color": "#f4a27a", "size": 5}, "hovertemplate": "%{y:.1%}"},
        {"type": "scatter", "mode": "lines", "name": "last 7 days", "x": x,
         "y": [_float(v) for v in series["recent"]], "line": {"color": COLORS["pro"], "width": 2.5},
         "hovertemplate": "%{y:.1%}"},
        {"type": "scatter", "mode": "lines", "name": "28-day baseline", "x": x,
         "y": [_float(v) for v in series["baseline"]], "line": {"color": "#6b7385", "dash": "dash", "width": 2},
         "hovertemplate": "%{y:.1%}"},
    ]
    if expected is not None:
        data.append({"type": "scatter", "mode": "lines", "name": "expected", "x": [x[0], x[-1]] if x else [],
                     "y": [expected, expected], "line": {"color": "#1f8a4c", "dash": "dot", "width": 1.5},
                     "hoverinfo": "skip"})
    return figure(data, title="Pro share (primary + escalation calls)", yaxis={"tickformat": ".0%"})


def _ratio_list(numerator: np.ndarray, denominator: np.ndarray) -> list[float | None]:
    return [None if d == 0 else n / d for n, d in zip(numerator.tolist(), denominator.tolist(), strict=True)]


def share_axis(*series: list) -> dict:
    """A 0-based percent axis that stays readable when every value is 0 or missing."""
    top = max((v for values in series for v in values if v is not None), default=0)
    return {"tickformat": ".0%", "range": [0, 0.1]} if top <= 0 else {"tickformat": ".0%", "rangemode": "tozero"}


def output_tokens_figure(frame: pd.DataFrame, days: list[dt.date]) -> dict:
    calls = _daily_sum(frame, days, "calls")
    x = _day_labels(days)
    cap_hit = _ratio_list(_daily_sum(frame, days, "cap_hit_calls"), calls)
    data = [
        {"type": "scatter", "mode": "lines", "name": "output tokens per call", "x": x,
         "y": _ratio_list(_daily_sum(frame, days, "output_tokens"), calls), "line": {"color": "#3557d4", "width": 2},
         "hovertemplate": "%{y:,.0f} tokens"},
        {"type": "scatter", "mode": "lines", "name": "cap-hit share", "x": x, "yaxis": "y2",
         "y": cap_hit, "line": {"color": "#b7791f", "width": 2},
         "hovertemplate": "%{y:.1%}"},
    ]
    return figure(data, title="Output tokens per call and cap-hit share", yaxis={"title": {"text": "tokens"}},
                  yaxis2={"overlaying": "y", "side": "right", "showgrid": False, **share_axis(cap_hit)},
                  margin={"l": 56, "r": 48, "t": 36, "b": 36})


def hist_matrix(hists) -> np.ndarray:
    """Histograms (lists of bucket counts, any length) as one rows x N_BUCKETS integer matrix."""
    return selectors.hist_matrix(hists)


MIDPOINTS = np.array([buckets.bucket_midpoint(i) for i in range(buckets.N_BUCKETS)])


def quantiles_by_row(matrix: np.ndarray, q: float) -> list[float | None]:
    """buckets.quantile for every row at once (nearest rank, bucket midpoint); None for empty rows."""
    totals = matrix.sum(axis=1)
    ranks = np.maximum(1, np.ceil(q * totals))
    index = (matrix.cumsum(axis=1) >= ranks[:, None]).argmax(axis=1)
    return [None if total == 0 else float(MIDPOINTS[i]) for i, total in zip(index, totals, strict=True)]


def latency_figure(frame: pd.DataFrame, days: list[dt.date]) -> dict:
    """p50/p95 latency per day and tier from merged log-bucket histograms."""
    data = []
    x = _day_labels(days)
    position = {day: i for i, day in enumerate(days)}
    rows_of: dict[str, list[int]] = {}  # plain lists: a boolean frame filter per tier costs more
    day_of: dict[str, list[int]] = {}
    tiers, row_days = (frame["tier"].tolist(), frame["day"].tolist()) if not frame.empty else ([], [])
    for row, (tier, day) in enumerate(zip(tiers, row_days, strict=True)):
        rows_of.setdefault(tier, []).append(row)
        day_of.setdefault(tier, []).append(position[day])
    matrix = hist_matrix(frame["latency_hist"].tolist()) if rows_of else None
    for tier in TIER_ORDER:
        if tier not in rows_of:
            continue
        per_day = np.zeros((len(days), buckets.N_BUCKETS), dtype=np.int64)
        np.add.at(per_day, day_of[tier], matrix[rows_of[tier]])
        for q, dash in ((0.5, "solid"), (0.95, "dot")):
            data.append({"type": "scatter", "mode": "lines", "name": f"{tier} p{int(q * 100)}", "x": x,
                         "y": [None if v is None else round(v / 1000, 3) for v in quantiles_by_row(per_day, q)],
                         "line": {"color": COLORS[tier], "dash": dash, "width": 2},
                         "connectgaps": False, "hovertemplate": "%{y:,.2f} s"})
    return figure(data, title="Latency p50 / p95 by tier (seconds)", yaxis={"ticksuffix": " s"})


def rates_figure(frame: pd.DataFrame, days: list[dt.date]) -> dict:
    primary = _daily_sum(frame, days, "calls", roles=("primary",))
    x = _day_labels(days)
    escalation = _ratio_list(_daily_sum(frame, days, "calls", roles=("escalation",)), primary)
    shadow = _ratio_list(_daily_sum(frame, days, "calls", roles=("shadow",)), primary)
    data = [
        {"type": "scatter", "mode": "lines", "name": "escalation rate", "x": x, "y": escalation,
         "line": {"color": "#7c3aed", "width": 2}, "hovertemplate": "%{y:.1%}"},
        {"type": "scatter", "mode": "lines", "name": "shadow rate", "x": x, "y": shadow,
         "line": {"color": "#0d9488", "width": 2}, "hovertemplate": "%{y:.1%}"},
    ]
    return figure(data, title="Escalation and shadow calls per primary call", yaxis=share_axis(escalation, shadow))


# --- sparklines ---------------------------------------------------------------------------

def sparkline_svg(values: list, *, width: int = 120, height: int = 28, color: str = "#3557d4",
                  label: str = "") -> str:
    """An inline SVG polyline of `values` (None = 0), rendered server-side: no script per row."""
    numbers = [float(v or 0) for v in values]
    if not numbers:
        return ""
    top = max(numbers) or 1.0
    step = width / max(len(numbers) - 1, 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(numbers))
    area = f"0,{height} {points} {width:.1f},{height}"
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(label)}"><polygon points="{area}" fill="{color}" fill-opacity="0.12"/>'
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5" '
            f'stroke-linejoin="round"/></svg>')

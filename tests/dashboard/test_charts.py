import datetime as dt

import pandas as pd
import pytest

from costwatch.dashboard import charts
from tests import histograms


def test_sparkline_scales_to_the_largest_value():
    svg = charts.sparkline_svg([0, 5, 10, None], width=30, height=24)
    points = svg.split('<polyline points="')[1].split('"')[0].split()
    assert points == ["0.0,22.0", "10.0,12.0", "20.0,2.0", "30.0,22.0"]
    assert svg.startswith('<svg class="spark"') and "<script" not in svg


def frame(rows):
    return pd.DataFrame(rows, columns=["day", "tier", "role", "calls"])


def test_pro_share_series_compares_7_days_with_the_28_before():
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    rows = []
    for i, day in enumerate(days):
        pro = 1 if i < 33 else 3  # 10% Pro for 33 days, then 30%
        rows += [(day, "pro", "primary", pro), (day, "lite", "primary", 10 - pro), (day, "pro", "shadow", 5)]
    series = charts.pro_share_series(frame(rows), days)
    last = series.iloc[-1]
    assert last["daily"] == pytest.approx(0.3)
    assert last["recent"] == pytest.approx(0.3)  # days 33-39
    assert last["baseline"] == pytest.approx(0.1)  # days 5-32: shadow calls never count
    assert pd.isna(series.iloc[0]["baseline"])  # no days before the first one
    fig = charts.pro_share_figure(series)
    assert fig["data"][2]["y"][0] is None and fig["data"][2]["y"][-1] == pytest.approx(0.1)


def test_empty_frame_gives_figures_without_traces():
    empty = pd.DataFrame(columns=["day", "tier", "role", "calls", "cost_usd", "output_tokens", "cap_hit_calls",
                                  "latency_hist"])
    days = [dt.date(2026, 1, 1)]
    assert charts.feature_cost_figure(empty, days)["data"] == []
    assert charts.latency_figure(empty, days)["data"] == []


def test_vectorised_quantiles_are_the_bucket_midpoints_of_the_nearest_rank_values():
    samples = [[120, 340, 800, 800, 5000], [], list(range(1, 2000, 7)), [0, 0, 3]]
    matrix = charts.hist_matrix([histograms.histogram(values) for values in samples])
    for q in (0.5, 0.95):
        expected = [histograms.quantile(values, q) for values in samples]
        assert charts.quantiles_by_row(matrix, q) == pytest.approx(expected)

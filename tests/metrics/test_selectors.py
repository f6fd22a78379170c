"""Selectors against Python arithmetic on hand-built events (never the code's own SQL)."""

import datetime as dt
import math
from decimal import Decimal

import pytest

from costwatch.metrics import buckets, selectors, services
from tests.factories import make_project
from tests.metrics.eventdata import UTC, counters, event_row, nearest_rank, random_rows, routed, store_events

START = dt.datetime(2026, 11, 1, tzinfo=UTC)
END = dt.datetime(2026, 11, 11, tzinfo=UTC)


def share(numerator, denominator):
    return None if denominator == 0 else numerator / denominator


def expected_feature(rows, huge_cap=8192):
    parts = counters(rows, huge_cap)
    primary = [r for r in rows if r["role"] == "primary"]
    priced_cost = parts["cost_usd"] if parts["priced_calls"] else None
    return {
        "calls": len(rows), "requests": len(primary), "cost_usd": priced_cost,
        "cost_per_call_usd": priced_cost / parts["priced_calls"] if priced_cost is not None else None,
        "pro_share": share(sum(1 for r in routed(rows) if r["tier"] == "pro"), len(routed(rows))),
        "uncapped_share": share(parts["uncapped_calls"], parts["cap_known_calls"]),
        "cap_hit_share": share(parts["cap_hit_calls"], len(rows)),
        "output_tokens_per_call": share(parts["output_tokens"], len(rows)),
        "escalation_rate": share(sum(1 for r in rows if r["role"] == "escalation"), len(primary)),
        "unpriced_calls": parts["unpriced_calls"], "error_calls": parts["error_calls"],
        "input_tokens": parts["input_tokens"], "output_tokens": parts["output_tokens"],
        "triage_cost_usd": sum((r["cost_usd"] for r in rows if r["role"] == "triage" and r["cost_usd"] is not None),
                               Decimal(0)),
    }


@pytest.fixture
def mixed(project):
    project.dimensions = ["customer"]
    project.save()
    rows = random_rows(21, 900, start=START - dt.timedelta(days=2), hours=24 * 14)
    store_events(project, rows)
    services.refresh_dirty_rollups(project=project)
    return rows


def in_range(rows, start=START, end=END, **match):
    return [r for r in rows if start <= r["ts"] < end and all(r[k] == v for k, v in match.items())]


@pytest.mark.django_db
def test_feature_metrics_match_python_arithmetic(project, mixed):
    result = {row["feature"]: row for row in selectors.feature_metrics(project=project, start=START, end=END)}
    assert set(result) == {"triage", "search-rank"}
    assert selectors.feature_metrics(project=project, start=START, end=END, feature="triage") == [result["triage"]]
    for name, row in result.items():
        rows = in_range(mixed, feature=name)
        expected = expected_feature(rows)
        for key, value in expected.items():
            if isinstance(value, float):
                assert row[key] == pytest.approx(value, rel=1e-12), key
            else:
                assert row[key] == value, key
        for metric, column in (("latency", "latency_ms"), ("ttft", "ttft_ms")):
            for q in (0.5, 0.95):
                exact = nearest_rank([r[column] for r in rows], q)
                estimate = row[f"{metric}_p{int(q * 100)}_ms"]
                assert abs(estimate - exact) <= 0.125 * exact, (metric, q)


@pytest.mark.django_db
def test_feature_metrics_filter_by_environment_and_dimension(project, mixed):
    result = {row["feature"]: row for row in selectors.feature_metrics(
        project=project, start=START, end=END, environment="staging", attrs={"customer": "acme"})}
    for name, row in result.items():
        rows = [r for r in in_range(mixed, feature=name, environment="staging")
                if r["attributes"].get("customer") == "acme"]
        expected = expected_feature(rows)
        assert (row["calls"], row["cost_usd"], row["requests"], row["unpriced_calls"]) == (
            expected["calls"], expected["cost_usd"], expected["requests"], expected["unpriced_calls"])
        assert row["pro_share"] == pytest.approx(expected["pro_share"])
        assert row["uncapped_share"] == pytest.approx(expected["uncapped_share"])
        assert row["latency_p95_ms"] is None  # no histograms per dimension value


@pytest.mark.django_db
def test_pro_share_change_compares_the_last_7_days_with_the_28_before(project):
    end = dt.datetime(2026, 11, 20, tzinfo=UTC)
    rows = []
    # 28-day baseline: 1 Pro in 4 routed calls (+ triage calls that must not count)
    for day in range(8, 36):
        ts = end - dt.timedelta(days=day, hours=-3)
        rows += [event_row(ts=ts, tier="pro"), event_row(ts=ts), event_row(ts=ts, role="escalation"),
                 event_row(ts=ts, tier="unknown"), event_row(ts=ts, role="triage", tier="pro")]
    # last 7 days: 3 Pro in 5 routed calls
    for day in range(1, 8):
        ts = end - dt.timedelta(days=day, hours=-3)
        rows += [event_row(ts=ts, tier="pro"), event_row(ts=ts, tier="pro", role="escalation"),
                 event_row(ts=ts, tier="pro"), event_row(ts=ts), event_row(ts=ts, tier="unknown")]
    rows.append(event_row(ts=end - dt.timedelta(days=40), tier="pro"))  # outside both windows
    store_events(project, rows)
    services.refresh_dirty_rollups(project=project)
    [row] = selectors.feature_metrics(project=project, start=end - dt.timedelta(days=2), end=end)
    assert row["pro_share_change"] == pytest.approx(3 / 5 - 1 / 4)


@pytest.mark.django_db
def test_daily_timeseries_is_zero_filled_in_the_project_timezone(user):
    project = make_project("NY", owner=user, timezone_name="America/New_York")
    tz = project.tzinfo
    start = dt.datetime(2026, 11, 15, tzinfo=tz)
    end = dt.datetime(2026, 11, 19, tzinfo=tz)
    rows = [event_row(ts=dt.datetime(2026, 11, 16, 3, 0, tzinfo=UTC), tier="pro"),  # Nov 15 22:00 local
            event_row(ts=dt.datetime(2026, 11, 16, 6, 0, tzinfo=UTC)),  # Nov 16 01:00 local
            event_row(ts=dt.datetime(2026, 11, 16, 7, 0, tzinfo=UTC), cost_usd=None, cost_source="")]
    store_events(project, rows)
    services.refresh_dirty_rollups(project=project)
    series = selectors.timeseries(project=project, metric="pro_share", granularity="day", start=start, end=end)
    assert [(p["t"], p["value"]) for p in series] == [
        (dt.datetime(2026, 11, 15, tzinfo=tz), 1.0), (dt.datetime(2026, 11, 16, tzinfo=tz), 0.0),
        (dt.datetime(2026, 11, 17, tzinfo=tz), None), (dt.datetime(2026, 11, 18, tzinfo=tz), None)]
    cost = selectors.timeseries(project=project, metric="cost", granularity="day", start=start, end=end)
    assert [p["value"] for p in cost] == [rows[0]["cost_usd"], rows[1]["cost_usd"], 0, 0]
    by_tier = selectors.timeseries(project=project, metric="calls", granularity="day", start=start, end=end,
                                   group_by="tier")
    assert [(p["t"].day, p["group"], p["value"]) for p in by_tier][:4] == [
        (15, "lite", 0), (15, "pro", 1), (16, "lite", 2), (16, "pro", 0)]


@pytest.mark.django_db
def test_hourly_timeseries_by_model_and_unfiltered(project, mixed):
    start, end = START + dt.timedelta(hours=5), START + dt.timedelta(hours=29)
    series = selectors.timeseries(project=project, feature="triage", metric="uncapped_share", granularity="hour",
                                  start=start, end=end)
    assert len(series) == 24
    for point in series:
        rows = in_range(mixed, start=point["t"], end=point["t"] + dt.timedelta(hours=1), feature="triage")
        parts = counters(rows)
        expected = share(parts["uncapped_calls"], parts["cap_known_calls"])
        assert point["value"] == (pytest.approx(expected) if expected is not None else None)
    by_model = selectors.timeseries(project=project, metric="output_tokens_per_call", granularity="hour",
                                    start=start, end=end, group_by="model")
    assert len(by_model) == 24 * 3
    for point in by_model:
        rows = in_range(mixed, start=point["t"], end=point["t"] + dt.timedelta(hours=1), model=point["group"])
        expected = share(sum(r["output_tokens"] for r in rows), len(rows))
        assert point["value"] == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.django_db
def test_daily_timeseries_by_model(project, mixed):
    series = selectors.timeseries(project=project, metric="pro_share", granularity="day", start=START, end=END,
                                  group_by="model", environment="production")
    assert len(series) == 10 * 3
    for point in series:
        rows = routed(in_range(mixed, start=point["t"], end=point["t"] + dt.timedelta(days=1), model=point["group"],
                               environment="production"))
        expected = share(sum(1 for r in rows if r["tier"] == "pro"), len(rows))
        assert point["value"] == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.django_db
def test_models_breakdown_and_feature_daily(project, mixed):
    models = {(m["model"], m["tier"]): m for m in selectors.model_metrics(project=project, start=START, end=END)}
    for (model, tier), row in models.items():
        parts = counters(in_range(mixed, model=model, tier=tier))
        assert (row["calls"], row["cost_usd"], row["unpriced_calls"], row["output_tokens"]) == (
            parts["calls"], parts["cost_usd"], parts["unpriced_calls"], parts["output_tokens"])
        assert row["price_source"] in ("client", "none")  # no price rows in this test database
    assert {m[0] for m in models} == {"flash-lite", "pro-model", "mystery"}

    breakdown = selectors.dimension_breakdown(project=project, dimension="customer", start=START, end=END,
                                              feature="search-rank")
    assert {b["value"] for b in breakdown} == {"acme", "globex", "initech"}
    for row in breakdown:
        rows = [r for r in in_range(mixed, feature="search-rank") if r["attributes"].get("customer") == row["value"]]
        assert row["calls"] == len(rows)
        assert row["cost_usd"] == counters(rows)["cost_usd"]
        assert row["pro_share"] == pytest.approx(
            share(sum(1 for r in routed(rows) if r["tier"] == "pro"), len(routed(rows))))

    frame = selectors.feature_daily(project=project, feature="triage", start=START, end=END)
    assert int(frame["calls"].sum()) == len(in_range(mixed, feature="triage"))
    triage_rows = in_range(mixed, feature="triage")
    merged = buckets.merge_all(frame["latency_hist"])
    assert merged == buckets.histogram(r["latency_ms"] for r in triage_rows)
    first_day = frame[frame["day"] == START.date()]
    assert int(first_day["output_tokens"].sum()) == sum(
        r["output_tokens"] for r in in_range(mixed, start=START, end=START + dt.timedelta(days=1), feature="triage"))


@pytest.mark.django_db
def test_overview_month_to_date_forecast_and_last_month(project):
    now = dt.datetime(2026, 11, 11, 12, 0, tzinfo=UTC)  # 10.5 of 30 days elapsed
    rows = [event_row(ts=dt.datetime(2026, 11, 2, tzinfo=UTC), cost_usd=Decimal("3.5"), tier="pro"),
            event_row(ts=dt.datetime(2026, 11, 10, tzinfo=UTC), cost_usd=Decimal("1.75"), feature="search"),
            event_row(ts=dt.datetime(2026, 11, 9, tzinfo=UTC), cost_usd=None, model="mystery", cost_source=""),
            event_row(ts=dt.datetime(2026, 10, 20, tzinfo=UTC), cost_usd=Decimal("9"))]
    store_events(project, rows)
    services.refresh_dirty_rollups(project=project)
    result = selectors.overview(project=project, now=now)
    assert result["spent_usd"] == Decimal("5.25")
    assert result["forecast_usd"] == pytest.approx(Decimal("5.25") * 30 / Decimal("10.5"))
    assert result["last_month_usd"] == Decimal(9)
    assert (result["pro_share"], result["lite_share"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert result["unpriced_calls"] == 1 and result["unpriced_models"] == [{"model": "mystery", "unpriced_calls": 1}]
    assert [f["feature"] for f in result["top_by_cost"]] == ["ticket-triage", "search"]
    # last 7 days (Nov 5-11) vs the 7 before: search +1.75, ticket-triage -3.5
    assert [(f["feature"], f["change_usd"]) for f in result["top_by_change"]] == [
        ("ticket-triage", Decimal("-3.5")), ("search", Decimal("1.75"))]
    assert math.isclose(float(result["forecast_usd"]), 15.0)

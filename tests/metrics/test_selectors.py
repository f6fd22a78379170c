"""Selectors against Python arithmetic on hand-built events (never the code's own SQL)."""

import datetime as dt
import math
from decimal import Decimal

import pytest

from costwatch.metrics import selectors, services
from tests import histograms
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
    services.rollups_refresh_dirty(project=project)
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
    services.rollups_refresh_dirty(project=project)
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
    services.rollups_refresh_dirty(project=project)
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
    merged = histograms.summed(frame["latency_hist"])
    assert merged == histograms.histogram(r["latency_ms"] for r in triage_rows)
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
    services.rollups_refresh_dirty(project=project)
    result = selectors.overview(project=project, now=now)
    assert result["spent_usd"] == Decimal("5.25")
    assert result["forecast_usd"] == pytest.approx(Decimal("5.25") * 30 / Decimal("10.5"))
    assert result["last_month_usd"] == Decimal(9)
    assert (result["pro_share"], result["lite_share"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert result["unpriced_calls"] == 1 and result["unpriced_models"] == [{"model": "mystery", "unpriced_calls": 1}]
    assert [f["feature"] for f in result["top_by_cost"]] == ["ticket-triage", "search"]
    # last 7 full days (Nov 4-10) vs the 7 before (Oct 28 - Nov 3): search +1.75, ticket-triage -3.5
    assert [(f["feature"], f["change_usd"]) for f in result["top_by_change"]] == [
        ("ticket-triage", Decimal("-3.5")), ("search", Decimal("1.75"))]
    assert math.isclose(float(result["forecast_usd"]), 15.0)


@pytest.mark.django_db
def test_overview_change_leaves_out_todays_partial_day(project):
    now = dt.datetime(2026, 11, 11, 9, 0, tzinfo=UTC)
    rows = [event_row(ts=dt.datetime(2026, 11, 3, 12, tzinfo=UTC), cost_usd=Decimal("2")),  # the 7 days before
            event_row(ts=dt.datetime(2026, 11, 4, 12, tzinfo=UTC), cost_usd=Decimal("3")),  # the last 7 full days
            event_row(ts=dt.datetime(2026, 11, 11, 8, tzinfo=UTC), cost_usd=Decimal("50"))]  # today: not yet a day
    store_events(project, rows)
    services.rollups_refresh_dirty(project=project)
    (row,) = selectors.overview(project=project, now=now)["top_by_change"]
    assert (row["week_cost_usd"], row["previous_week_cost_usd"], row["change_usd"]) == (
        Decimal(3), Decimal(2), Decimal(1))


# --- the feature page's reads: one FeatureDay frame and one calls read instead of feature_metrics' queries -----

def _page_row(project, name, start, end, environment=None):
    """feature_metrics_from_daily the way the feature page calls it."""
    feature = project.features.get(name=name)
    frame = selectors.feature_daily(project=project, feature=feature, start=start, end=end, environment=environment)
    change = selectors.pro_share_changes(project, end, environment, feature_id=feature.pk).get(feature.pk)
    return selectors.feature_metrics_from_daily(feature=feature, frame=frame, pro_share_change=change)


@pytest.mark.django_db
@pytest.mark.parametrize("environment", [None, "staging"])
def test_feature_metrics_from_daily_is_feature_metrics_row(project, mixed, environment):
    for name in ("triage", "search-rank"):
        row = _page_row(project, name, START, END, environment)
        assert [row] == selectors.feature_metrics(project=project, start=START, end=END, environment=environment,
                                                  feature=name)
        rows = in_range(mixed, feature=name, **({"environment": environment} if environment else {}))
        for key, value in expected_feature(rows).items():
            assert row[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key
        for metric, column in (("latency", "latency_ms"), ("ttft", "ttft_ms")):
            exact = nearest_rank([r[column] for r in rows], 0.95)
            assert abs(row[f"{metric}_p95_ms"] - exact) <= 0.125 * exact, metric


@pytest.mark.django_db
def test_feature_metrics_from_daily_keeps_role_costs_and_empty_ranges(project):
    end = dt.datetime(2026, 11, 20, tzinfo=UTC)
    ts = end - dt.timedelta(days=3)
    # no triage rows at all (triage cost 0, as a NULL FILTERed sum falls back to the priced calls),
    # an unpriced shadow call (shadow cost None), and a Pro-share change from days before the range
    rows = [event_row(ts=ts, tier="pro"), event_row(ts=ts), event_row(ts=ts, role="escalation", tier="pro"),
            event_row(ts=ts, role="shadow", tier="pro", cost_usd=None, cost_source=""),
            event_row(ts=end - dt.timedelta(days=20)), event_row(ts=end - dt.timedelta(days=20), tier="pro"),
            event_row(ts=end - dt.timedelta(days=20)), event_row(ts=end - dt.timedelta(days=20))]
    store_events(project, rows)
    services.rollups_refresh_dirty(project=project)
    start = end - dt.timedelta(days=5)
    row = _page_row(project, "ticket-triage", start, end)
    assert [row] == selectors.feature_metrics(project=project, start=start, end=end, feature="ticket-triage")
    assert row["triage_cost_usd"] == Decimal(0) and row["shadow_cost_usd"] is None
    assert row["escalation_cost_usd"] == Decimal("0.000180000000")
    assert row["pro_share_change"] == pytest.approx(2 / 3 - 1 / 4)
    # a range without calls: an all-empty row, the baseline still read from the days before
    empty_start, empty_end = end - dt.timedelta(days=12), end - dt.timedelta(days=10)
    empty = _page_row(project, "ticket-triage", empty_start, empty_end)
    assert [empty] == selectors.feature_metrics(project=project, start=empty_start, end=empty_end,
                                                feature="ticket-triage")
    assert (empty["calls"], empty["cost_usd"], empty["latency_p50_ms"]) == (0, None, None)


@pytest.mark.django_db
def test_feature_daily_adds_up_environments_per_day_tier_and_role(project, mixed):
    frame = selectors.feature_daily(project=project, feature=project.features.get(name="search-rank"),
                                    start=START, end=END)
    rows = in_range(mixed, feature="search-rank")
    groups = {}
    for r in rows:
        groups.setdefault((r["ts"].date(), r["tier"], r["role"]), []).append(r)
    assert len(frame) == len(groups)
    for day, tier, role, calls, cost, latency, ttft, output in zip(
            frame["day"], frame["tier"], frame["role"], frame["calls"], frame["cost_usd"], frame["latency_hist"],
            frame["ttft_hist"], frame["output_tokens_hist"], strict=True):
        group_rows = groups[(day, tier, role)]
        assert (calls, cost) == (len(group_rows), counters(group_rows)["cost_usd"])
        assert latency == histograms.histogram(r["latency_ms"] for r in group_rows)
        assert ttft == histograms.histogram(r["ttft_ms"] for r in group_rows)
        assert output == histograms.histogram(r["output_tokens"] for r in group_rows)
    assert len({r["environment"] for r in rows}) == 2  # the merge was exercised


def test_hist_sum_adds_histograms_bucket_by_bucket():
    hists = [[1, 0, 3], [], None, [0, 0, 0, 0, 5], [2], [0] * 100, [1] * 100]
    assert selectors.hist_sum(hists) == [4, 1, 4, 1, 6] + [1] * 95
    assert selectors.hist_sum([[0, 0], []]) == [] == selectors.hist_sum([])


@pytest.mark.django_db
def test_dimension_breakdowns_reads_every_dimension_at_once(project, mixed, django_assert_num_queries):
    project.dimensions = ["customer", "other"]
    project.save()
    services.rollups_rebuild(project=project)
    feature = project.features.get(name="triage")
    with django_assert_num_queries(1):
        result = selectors.dimension_breakdowns(project=project, dimensions=["customer", "other"], start=START,
                                                end=END, feature=feature, environment="production")
    rows = in_range(mixed, feature="triage", environment="production")
    for dimension in ("customer", "other"):
        values = {str(r["attributes"][dimension]) for r in rows if dimension in r["attributes"]}
        assert [b["value"] for b in result[dimension]] == sorted(
            values, key=lambda v: (-counters([r for r in rows if str(r["attributes"].get(dimension)) == v])["cost_usd"],
                                   v))
        for b in result[dimension]:
            mine = [r for r in rows if str(r["attributes"].get(dimension)) == b["value"]]
            assert (b["calls"], b["cost_usd"]) == (len(mine), counters(mine)["cost_usd"])
        assert result[dimension] == selectors.dimension_breakdown(
            project=project, dimension=dimension, start=START, end=END, feature="triage", environment="production")


@pytest.mark.django_db
def test_role_costs_filtered_by_a_dimension_tell_unpriced_from_absent(project):
    project.dimensions = ["customer"]
    project.save()
    end = dt.datetime(2026, 11, 20, tzinfo=UTC)
    ts, acme = end - dt.timedelta(days=2), {"customer": "acme"}
    # acme: priced primary and escalation calls, an unpriced shadow call, no triage call at all.
    store_events(project, [event_row(ts=ts, attributes=acme), event_row(ts=ts, role="escalation", attributes=acme),
                           event_row(ts=ts, role="shadow", cost_usd=None, cost_source="", attributes=acme)])
    services.rollups_refresh_dirty(project=project)
    start = end - dt.timedelta(days=5)
    for attrs in (None, {"customer": "acme"}):  # FeatureDay rows, then DimensionDay rows
        [row] = selectors.feature_metrics(project=project, start=start, end=end, attrs=attrs)
        assert (row["triage_cost_usd"], row["escalation_cost_usd"], row["shadow_cost_usd"]) == (
            Decimal(0), Decimal("0.000180000000"), None)

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from costwatch.metrics import services
from costwatch.metrics.models import (
    DimensionDay,
    FeatureDay,
    FeatureHour,
    FeatureLatencyDay,
    FeatureLatencyHour,
    HourlyRollup,
    ModelDay,
    RollupState,
)
from ingest.models import DirtyHour
from tests import histograms
from tests.factories import make_project
from tests.metrics.eventdata import (
    UTC,
    counters,
    event_row,
    group,
    random_rows,
    routed,
    store_events,
    utc_hour,
)

COUNTER_NAMES = list(counters([]).keys())
START = dt.datetime(2026, 11, 18, 22, 0, tzinfo=UTC)


def rollup_rows(model, key_fields, extra=()):
    rows = model.objects.values(*key_fields, *COUNTER_NAMES, *extra)
    return {tuple(r[k] for k in key_fields): r for r in rows}


def expected_hists(rows):
    return {"latency_hist": histograms.histogram(r["latency_ms"] for r in rows),
            "ttft_hist": histograms.histogram(r["ttft_ms"] for r in rows),
            "output_tokens_hist": histograms.histogram(r["output_tokens"] for r in rows)}


@pytest.fixture
def mixed(project):
    project.dimensions = ["customer"]
    project.save()
    rows = random_rows(11, 700, start=START, hours=30)
    store_events(project, rows)
    services.rollups_refresh_dirty(project=project)
    return rows


def feature_names(project):
    return dict(project.features.values_list("id", "name"))


@pytest.mark.django_db
def test_hourly_rollup_equals_a_direct_aggregate_of_raw_events(project, mixed):
    names = feature_names(project)
    keys = ("hour", "environment", "feature_id", "model", "tier", "role", "status", "route_reason")
    stored = rollup_rows(HourlyRollup, keys, extra=("latency_hist", "ttft_hist", "output_tokens_hist"))
    expected = group(mixed, lambda r: (utc_hour(r["ts"]), r["environment"], r["feature"], r["model"], r["tier"],
                                       r["role"], r["status"], r["route_reason"]))
    stored = {(k[0], k[1], names[k[2]], *k[3:]): v for k, v in stored.items()}
    assert set(stored) == set(expected)
    for key, rows in expected.items():
        assert {n: stored[key][n] for n in COUNTER_NAMES} == counters(rows), key
        assert {n: stored[key][n] for n in expected_hists(rows)} == expected_hists(rows), key
    assert not DirtyHour.objects.filter(project=project).exists()


@pytest.mark.django_db
def test_feature_hour_has_role_counts_and_pro_share_parts(project, mixed):
    names = feature_names(project)
    extra = ("primary_calls", "triage_calls", "escalation_calls", "shadow_calls", "routed_calls", "routed_pro_calls",
             "routed_pro_default_calls", "triage_cost_usd", "escalation_cost_usd", "shadow_cost_usd")
    stored = rollup_rows(FeatureHour, ("hour", "environment", "feature_id"), extra=extra)
    stored = {(k[0], k[1], names[k[2]]): v for k, v in stored.items()}
    expected = group(mixed, lambda r: (utc_hour(r["ts"]), r["environment"], r["feature"]))
    assert set(stored) == set(expected)
    for key, rows in expected.items():
        row = stored[key]
        assert {n: row[n] for n in COUNTER_NAMES} == counters(rows)
        for role in ("primary", "triage", "escalation", "shadow"):
            assert row[f"{role}_calls"] == sum(1 for r in rows if r["role"] == role)
        # pro_share parts: unknown-tier primary/escalation calls are in the denominator
        assert row["routed_calls"] == len(routed(rows))
        assert row["routed_pro_calls"] == sum(1 for r in routed(rows) if r["tier"] == "pro")
        assert row["routed_pro_default_calls"] == sum(
            1 for r in routed(rows) if r["tier"] == "pro" and r["route_reason"] in ("default", "fallback"))
        for role in ("triage", "escalation", "shadow"):
            assert row[f"{role}_cost_usd"] == sum(
                (r["cost_usd"] for r in rows if r["role"] == role and r["cost_usd"] is not None), Decimal(0))


@pytest.mark.django_db
def test_feature_day_and_dimension_day_equal_raw_aggregates(project, mixed):
    names = feature_names(project)
    stored = rollup_rows(FeatureDay, ("day", "environment", "feature_id", "tier", "role"),
                         extra=("latency_hist", "ttft_hist", "output_tokens_hist"))
    stored = {(k[0], k[1], names[k[2]], k[3], k[4]): v for k, v in stored.items()}
    expected = group(mixed, lambda r: (r["ts"].date(), r["environment"], r["feature"], r["tier"], r["role"]))
    assert set(stored) == set(expected)
    for key, rows in expected.items():
        assert {n: stored[key][n] for n in COUNTER_NAMES} == counters(rows)
        assert {n: stored[key][n] for n in expected_hists(rows)} == expected_hists(rows)

    stored = {(r.day, r.environment, r.feature.name): r for r in FeatureLatencyDay.objects.select_related("feature")}
    expected = group(mixed, lambda r: (r["ts"].date(), r["environment"], r["feature"]))
    assert set(stored) == set(expected)
    for key, rows in expected.items():
        hists = expected_hists(rows)
        assert (stored[key].latency_hist, stored[key].ttft_hist) == (hists["latency_hist"], hists["ttft_hist"])

    stored = {(r.hour, r.environment, r.feature.name): r for r in FeatureLatencyHour.objects.select_related("feature")}
    expected = group(mixed, lambda r: (utc_hour(r["ts"]), r["environment"], r["feature"]))
    assert set(stored) == set(expected)
    for key, rows in expected.items():
        hists = expected_hists(rows)
        assert (stored[key].latency_hist, stored[key].ttft_hist) == (hists["latency_hist"], hists["ttft_hist"])

    stored = rollup_rows(ModelDay, ("day", "environment", "feature_id", "model", "tier"),
                         extra=("routed_calls", "routed_pro_calls"))
    stored = {(k[0], k[1], names[k[2]], k[3], k[4]): v for k, v in stored.items()}
    expected = group(mixed, lambda r: (r["ts"].date(), r["environment"], r["feature"], r["model"], r["tier"]))
    assert set(stored) == set(expected)
    for key, rows in expected.items():
        assert {n: stored[key][n] for n in COUNTER_NAMES} == counters(rows)
        assert stored[key]["routed_calls"] == len(routed(rows))
        assert stored[key]["routed_pro_calls"] == sum(1 for r in routed(rows) if r["tier"] == "pro")

    with_customer = [r for r in mixed if "customer" in r["attributes"]]
    expected = group(with_customer, lambda r: (r["ts"].date(), r["environment"], r["feature"],
                                               r["attributes"]["customer"]))
    stored = {(d.day, d.environment, d.feature.name, d.value): d
              for d in DimensionDay.objects.select_related("feature")}
    assert {d.dimension for d in stored.values()} == {"customer"}  # 'other' is not a declared dimension
    assert set(stored) == set(expected)
    for key, rows in expected.items():
        row, parts = stored[key], counters(rows)
        assert (row.calls, row.cost_usd, row.priced_calls, row.uncapped_calls, row.cap_known_calls) == (
            parts["calls"], parts["cost_usd"], parts["priced_calls"], parts["uncapped_calls"],
            parts["cap_known_calls"])
        assert row.routed_calls == len(routed(rows))
        assert row.routed_pro_calls == sum(1 for r in routed(rows) if r["tier"] == "pro")
        assert row.primary_calls == sum(1 for r in rows if r["role"] == "primary")


@pytest.mark.django_db
def test_uncapped_counts_caps_at_or_above_huge_cap_and_leaves_out_unknown_caps(project):
    ts = dt.datetime(2026, 11, 20, 9, 5, tzinfo=UTC)
    caps = [(None, True), (8191, True), (8192, True), (20000, True), (None, False), (100, True)]
    store_events(project, [event_row(ts=ts, max_output_tokens=cap, cap_known=known,
                                     finish_reason="length" if cap == 100 else "stop") for cap, known in caps])
    services.rollups_refresh_dirty(project=project)
    row = FeatureHour.objects.get(project=project)
    assert (row.uncapped_calls, row.cap_known_calls, row.cap_hit_calls, row.calls) == (3, 5, 1, 6)

    project.huge_cap_tokens = 20001
    project.save()
    assert services.project_mark_all_dirty(project=project) == 1
    services.rollups_refresh_dirty(project=project)
    row = FeatureHour.objects.get(project=project)
    assert (row.uncapped_calls, row.cap_known_calls) == (1, 5)


@pytest.mark.django_db
def test_days_follow_the_project_timezone_across_dst(user):
    project = make_project("NY Team", owner=user, timezone_name="America/New_York")
    times = [
        dt.datetime(2026, 11, 20, 3, 30, tzinfo=UTC),  # Nov 19, 22:30 EST
        dt.datetime(2026, 11, 20, 5, 30, tzinfo=UTC),  # Nov 20, 00:30 EST
        dt.datetime(2026, 11, 1, 4, 30, tzinfo=UTC),  # Nov 1, 00:30 EDT (DST ends that day: 25 hours)
        dt.datetime(2026, 11, 2, 4, 30, tzinfo=UTC),  # Nov 1, 23:30 EST
    ]
    store_events(project, [event_row(ts=ts, output_tokens=10 * (i + 1)) for i, ts in enumerate(times)])
    services.rollups_refresh_dirty(project=project)
    days = dict(FeatureDay.objects.filter(project=project).values_list("day", "output_tokens"))
    assert days == {dt.date(2026, 11, 19): 10, dt.date(2026, 11, 20): 20, dt.date(2026, 11, 1): 30 + 40}


@pytest.mark.django_db
def test_days_in_a_half_hour_timezone_split_a_utc_hour(user):
    project = make_project("Bangalore", owner=user, timezone_name="Asia/Kolkata")
    project.dimensions = ["customer"]
    project.save()
    early = dt.datetime(2026, 11, 20, 18, 15, tzinfo=UTC)  # Nov 20, 23:45 IST
    late = dt.datetime(2026, 11, 20, 18, 45, tzinfo=UTC)  # Nov 21, 00:15 IST
    store_events(project, [event_row(ts=early, output_tokens=7, attributes={"customer": "acme"}),
                           event_row(ts=late, output_tokens=9, attributes={"customer": "acme"})])
    services.rollups_refresh_dirty(project=project)
    days = dict(FeatureDay.objects.filter(project=project).values_list("day", "output_tokens"))
    assert days == {dt.date(2026, 11, 20): 7, dt.date(2026, 11, 21): 9}
    assert dict(ModelDay.objects.filter(project=project).values_list("day", "output_tokens")) == days
    dims = dict(DimensionDay.objects.filter(project=project).values_list("day", "output_tokens"))
    assert dims == {dt.date(2026, 11, 20): 7, dt.date(2026, 11, 21): 9}


@pytest.mark.django_db
def test_a_second_refresh_of_the_same_hour_never_double_counts(project):
    ts = dt.datetime(2026, 11, 20, 9, 5, tzinfo=UTC)
    store_events(project, [event_row(ts=ts), event_row(ts=ts)])
    assert services.rollups_refresh_dirty(project=project) == services.RefreshResult(events_added=2)
    assert services.rollups_refresh_dirty(project=project) == services.RefreshResult()
    store_events(project, [event_row(ts=ts + dt.timedelta(minutes=10))])
    assert services.rollups_refresh_dirty() == services.RefreshResult(events_added=1)
    assert FeatureHour.objects.get(project=project).calls == 3
    assert FeatureDay.objects.get(project=project).calls == 3
    state = RollupState.objects.get(project=project)
    assert state.data_through == ts + dt.timedelta(minutes=10) and state.refreshed_at is not None


@pytest.mark.django_db
def test_rebuild_since_restores_deleted_rollups(project):
    rows = random_rows(5, 120, start=START, hours=10)
    store_events(project, rows)
    services.rollups_refresh_dirty(project=project)
    FeatureHour.objects.all().delete()
    HourlyRollup.objects.all().delete()
    since = START + dt.timedelta(hours=5)
    hours_after = {utc_hour(r["ts"]) for r in rows if r["ts"] >= since}
    assert services.rollups_rebuild(project=project, since=since) == len(hours_after)
    assert set(FeatureHour.objects.values_list("hour", flat=True)) == hours_after
    assert sum(FeatureHour.objects.values_list("calls", flat=True)) == sum(1 for r in rows if r["ts"] >= since)


@pytest.mark.django_db
def test_a_full_rebuild_after_a_timezone_change_leaves_no_old_days(project):
    store_events(project, [event_row(ts=dt.datetime(2026, 11, 20, 2, 0, tzinfo=UTC))])
    services.rollups_refresh_dirty(project=project)
    project.timezone = "America/Los_Angeles"
    project.save()
    services.project_mark_all_dirty(project=project, drop_days=True)
    services.rollups_refresh_dirty(project=project)
    assert list(FeatureDay.objects.values_list("day", flat=True)) == [dt.date(2026, 11, 19)]
    assert list(ModelDay.objects.values_list("day", flat=True)) == [dt.date(2026, 11, 19)]
    project.timezone = "Asia/Tokyo"
    project.save()
    services.rollups_rebuild(project=project)
    assert list(FeatureDay.objects.values_list("day", flat=True)) == [dt.date(2026, 11, 20)]


@pytest.mark.django_db
def test_refresh_rollups_command(project, capsys):
    store_events(project, [event_row()])
    call_command("refresh_rollups", "--project", project.name)
    assert "acme-support: 1 new event(s) added, 0 hour(s) rebuilt" in capsys.readouterr().out
    assert FeatureHour.objects.get(project=project).calls == 1
    call_command("refresh_rollups", "--since", "2026-11-01")
    assert "acme-support: 0 new event(s) added, 1 hour(s) rebuilt" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--project"):
        call_command("refresh_rollups", "--project", "nope")
    with pytest.raises(CommandError, match="--since"):
        call_command("refresh_rollups", "--since", "last tuesday")

"""Incremental rollups: new batches are added to the rollups as deltas (histograms bucket by
bucket), hours whose events changed in place are rebuilt, and after every refresh the rollups
equal both a rebuild from raw events and plain Python arithmetic over the events."""

import datetime as dt
import random
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from costwatch.metrics import services
from costwatch.metrics.models import (
    DimensionDay,
    FeatureDay,
    FeatureHour,
    FeatureLatencyDay,
    FeatureLatencyHour,
    HourlyRollup,
    ModelDay,
    RouteDay,
)
from ingest.models import DirtyHour
from ingest.services import event_rows_store
from tests.factories import make_project
from tests.histograms import histogram
from tests.metrics.eventdata import UTC, counters, event_row, group, random_rows, store_events, utc_hour

START = dt.datetime(2026, 11, 18, 20, 0, tzinfo=UTC)
TABLES = (HourlyRollup, FeatureHour, FeatureLatencyHour, FeatureDay, FeatureLatencyDay, ModelDay, DimensionDay, RouteDay)
ROUTE_COUNTERS = ("calls", "input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens",
                  "reasoning_tokens")
HISTS = ("latency_hist", "ttft_hist", "output_tokens_hist")


def snapshot(project) -> dict:
    """Every rollup row of the project (all columns but the surrogate id), per table."""
    tables = {}
    for model in TABLES:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows = model.objects.filter(project=project).values_list(*fields)
        tables[model.__name__] = sorted(rows, key=repr)
    return tables


def expected_hourly(rows) -> dict:
    """HourlyRollup by plain Python: counters and histograms per full key."""
    groups = group(rows, lambda r: (utc_hour(r["ts"]), r["environment"], r["feature"], r["model"], r["tier"],
                                    r["role"], r["status"], r["route_reason"]))
    return {key: {**counters(members), "latency_hist": histogram(r["latency_ms"] for r in members),
                  "ttft_hist": histogram(r["ttft_ms"] for r in members),
                  "output_tokens_hist": histogram(r["output_tokens"] for r in members)}
            for key, members in groups.items()}


def stored_hourly(project) -> dict:
    names = dict(project.features.values_list("id", "name"))
    wanted = [*counters([]).keys(), *HISTS]
    return {(r.hour, r.environment, names[r.feature_id], r.model, r.tier, r.role, r.status, r.route_reason):
            {name: getattr(r, name) for name in wanted}
            for r in HourlyRollup.objects.filter(project=project)}


def expected_feature_days(rows, tzinfo) -> dict:
    groups = group(rows, lambda r: (r["ts"].astimezone(tzinfo).date(), r["environment"], r["feature"], r["tier"],
                                    r["role"]))
    return {key: (counters(members)["calls"], counters(members)["cost_usd"],
                  histogram(r["latency_ms"] for r in members))
            for key, members in groups.items()}


def stored_feature_days(project) -> dict:
    names = dict(project.features.values_list("id", "name"))
    return {(r.day, r.environment, names[r.feature_id], r.tier, r.role): (r.calls, r.cost_usd, r.latency_hist)
            for r in FeatureDay.objects.filter(project=project)}


def expected_route_days(rows, tzinfo) -> dict:
    groups = group(rows, lambda r: (r["ts"].astimezone(tzinfo).date(), r["environment"], r["feature"], r["model"],
                                    r["tier"], r["role"], r["route_reason"]))
    return {key: tuple(counters(members)[name] for name in ROUTE_COUNTERS) for key, members in groups.items()}


def stored_route_days(project) -> dict:
    names = dict(project.features.values_list("id", "name"))
    return {(r.day, r.environment, names[r.feature_id], r.model, r.tier, r.role, r.route_reason):
            tuple(getattr(r, name) for name in ROUTE_COUNTERS) for r in RouteDay.objects.filter(project=project)}


def assert_rollups_match(project, rows):
    """The rollups equal plain Python over `rows`, and equal a rebuild from raw events."""
    assert stored_hourly(project) == expected_hourly(rows)
    assert stored_feature_days(project) == expected_feature_days(rows, project.tzinfo)
    assert stored_route_days(project) == expected_route_days(rows, project.tzinfo)
    customers = [r for r in rows if "customer" in r["attributes"]]
    by_value = group(customers, lambda r: r["attributes"]["customer"])
    stored = {}
    for row in DimensionDay.objects.filter(project=project, dimension="customer"):
        calls, cost = stored.get(row.value, (0, Decimal(0)))
        stored[row.value] = (calls + row.calls, cost + row.cost_usd)
    assert stored == {value: (counters(members)["calls"], counters(members)["cost_usd"])
                      for value, members in by_value.items()}
    incremental = snapshot(project)
    services.rollups_rebuild(project=project)
    assert snapshot(project) == incremental


@pytest.fixture
def kolkata(user):
    """A project whose midnights fall inside UTC hours (+05:30), with a declared dimension."""
    project = make_project("Bangalore", owner=user, timezone_name="Asia/Kolkata")
    project.dimensions = ["customer"]
    project.save()
    return project


@pytest.mark.django_db
def test_batches_added_as_deltas_equal_python_and_a_rebuild(kolkata):
    stored = []
    for seed in range(4):
        stored += store_events(kolkata, random_rows(100 + seed, 150, start=START, hours=8))
        result = services.rollups_refresh_dirty(project=kolkata)
        assert result == services.RefreshResult(events_added=150, hours_rebuilt=0)
        assert not DirtyHour.objects.filter(project=kolkata).exists()
        assert stored_hourly(kolkata) == expected_hourly(stored)
    # A retried batch, half of it already stored: only the new half is added (the staging path).
    fresh = [dict(row, event_id=f"retry-{i}") for i, row in enumerate(random_rows(200, 40, start=START, hours=8))]
    retried = stored[-40:] + fresh
    assert event_rows_store(project=kolkata, rows=retried).accepted == 40
    stored += retried[40:]
    assert services.rollups_refresh_dirty(project=kolkata) == services.RefreshResult(events_added=40)
    assert_rollups_match(kolkata, stored)


@pytest.mark.django_db
def test_deltas_of_one_hour_merge_histograms_bucket_by_bucket(project):
    ts = dt.datetime(2026, 11, 20, 9, 5, tzinfo=UTC)
    first = [event_row(ts=ts, latency_ms=value) for value in (0, 1, 3, 800)]
    second = [event_row(ts=ts + dt.timedelta(minutes=20), latency_ms=value) for value in (800, 30000, None)]
    store_events(project, first)
    services.rollups_refresh_dirty(project=project)
    store_events(project, second)
    services.rollups_refresh_dirty(project=project)
    row = HourlyRollup.objects.get(project=project)
    expected = histogram([0, 1, 3, 800, 800, 30000, None])
    assert row.latency_hist == expected and sum(expected) == 6
    assert FeatureDay.objects.get(project=project).latency_hist == expected
    assert FeatureLatencyDay.objects.get(project=project).latency_hist == expected
    assert row.calls == FeatureHour.objects.get(project=project).calls == 7


@pytest.mark.django_db
def test_hours_changed_in_place_are_rebuilt_beside_new_batches(kolkata):
    rows = random_rows(7, 200, start=START, hours=6)
    store_events(kolkata, rows)
    services.rollups_refresh_dirty(project=kolkata)
    # A recompute changes the cost of the stored events of one hour in place and marks it (no
    # first_event_id); a new batch arrives in the same hour before the next refresh.
    hour = utc_hour(rows[0]["ts"])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ingest_event SET cost_usd = 0.5 WHERE project_id = %s AND ts >= %s AND ts < %s",
                       [kolkata.pk, hour, hour + dt.timedelta(hours=1)])
    DirtyHour.objects.create(project=kolkata, hour=hour)
    for row in rows:
        if utc_hour(row["ts"]) == hour:
            row["cost_usd"] = Decimal("0.5")
    late = random_rows(8, 60, start=hour, hours=1)
    store_events(kolkata, late)
    result = services.rollups_refresh_dirty(project=kolkata)
    assert result == services.RefreshResult(events_added=60, hours_rebuilt=1)
    assert_rollups_match(kolkata, rows + late)


@pytest.mark.django_db
def test_a_settings_change_rebuilds_every_hour(kolkata):
    rows = random_rows(9, 120, start=START, hours=5)
    store_events(kolkata, rows)
    services.rollups_refresh_dirty(project=kolkata)
    kolkata.huge_cap_tokens = 300
    kolkata.save()
    marked = services.project_mark_all_dirty(project=kolkata)
    assert services.rollups_refresh_dirty(project=kolkata).hours_rebuilt == marked == len(
        {utc_hour(r["ts"]) for r in rows})
    uncapped = sum(1 for r in rows if r["cap_known"] and (r["max_output_tokens"] is None
                                                          or r["max_output_tokens"] >= 300))
    assert sum(FeatureHour.objects.filter(project=kolkata).values_list("uncapped_calls", flat=True)) == uncapped


@pytest.mark.django_db(transaction=True)
def test_concurrent_ingest_during_refreshes_is_counted_once(kolkata):
    """Writers on their own connections keep committing batches into the same hours while
    refreshes run on another connection; nothing is missed or counted twice."""
    sent, errors = [], []
    done = threading.Event()

    def ingest(seed):
        try:
            rng = random.Random(seed)
            for i in range(12):
                batch = random_rows(seed * 100 + i, rng.randint(20, 80), start=START, hours=4)
                sent.extend(store_events(kolkata, batch))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def refresh():
        try:
            while not done.is_set():
                services.rollups_refresh_dirty(project=kolkata)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    writers = [threading.Thread(target=ingest, args=(seed,)) for seed in (1, 2, 3)]
    refresher = threading.Thread(target=refresh)
    refresher.start()
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    done.set()
    refresher.join(timeout=120)
    assert errors == []
    services.rollups_refresh_dirty(project=kolkata)
    assert not DirtyHour.objects.filter(project=kolkata).exists()
    assert len(sent) == sum(HourlyRollup.objects.filter(project=kolkata).values_list("calls", flat=True))
    assert_rollups_match(kolkata, sent)

"""Hour-exact windows (docs/rollups.md#read-api): a read answers exactly the window it was asked, at odd hours in a
non-UTC project timezone. Whole days come from daily rollups, the partial days at the edges from
hourly rollups; the expected numbers are plain Python over the hand-built events."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from costwatch.metrics import services
from tests.factories import make_project
from tests.histograms import quantile
from tests.metrics.eventdata import event_row, store_events

NY = zoneinfo.ZoneInfo("America/New_York")
# Window: Nov 28 14:00 to Dec 1 09:00, New York time (19:00Z .. 14:00Z): two whole days (Nov 29 and
# Nov 30) and two partial ones.
START = dt.datetime(2026, 11, 28, 14, 0, tzinfo=NY)
END = dt.datetime(2026, 12, 1, 9, 0, tzinfo=NY)
PICKED = {"start": "2026-11-28T14:00", "end": "2026-12-01T09:00"}  # START and END as the range picker sends them
QUERY = {"start": "2026-11-28T19:00:00Z", "end": "2026-12-01T14:00:00Z"}


def hand_built_events():
    """Every 50 minutes from Nov 27 to Dec 2 (New York): two features, Lite and Pro, every role;
    calls in the window's partial days are slow (latency 9000 ms) so percentiles show whether the
    edges were read. A few older calls feed pro_share_change's 28-day base."""
    rows, ts, i = [], dt.datetime(2026, 11, 27, 0, 10, tzinfo=NY), 0
    while ts < dt.datetime(2026, 12, 2, 0, 0, tzinfo=NY):
        local_day = ts.astimezone(NY).date()
        edge_day = local_day in (dt.date(2026, 11, 28), dt.date(2026, 12, 1))
        pro = i % 3 == 0
        rows.append(event_row(
            ts=ts.astimezone(dt.UTC), feature=("search-rank" if i % 2 else "ticket-triage"),
            model="pro-model" if pro else "lite-model", tier="pro" if pro else "lite",
            role=("primary", "primary", "escalation", "triage", "shadow")[i % 5],
            output_tokens=100 + i, latency_ms=9000 + i if edge_day else 100 + i % 50, ttft_ms=50 + i % 7,
            cost_usd=Decimal(i + 1) / Decimal(10**6)))
        ts += dt.timedelta(minutes=50)
        i += 1
    for when, tier in [(dt.datetime(2026, 11, 24, 8, 30, tzinfo=NY), "pro"),  # base window (its edge hour)
                       (dt.datetime(2026, 11, 24, 9, 30, tzinfo=NY), "lite"),  # recent window
                       (dt.datetime(2026, 10, 27, 9, 30, tzinfo=NY), "lite"),  # base window (first hour)
                       (dt.datetime(2026, 10, 27, 8, 30, tzinfo=NY), "pro")]:  # before it: left out
        rows.append(event_row(ts=when.astimezone(dt.UTC), feature="ticket-triage", tier=tier, role="primary",
                              model=f"{tier}-model", latency_ms=None, ttft_ms=None))
    return rows


@pytest.fixture
def ny(user, key_client):
    project = make_project("New York", owner=user, timezone_name="America/New_York")
    project.dimensions = ["customer"]
    project.save()
    rows = store_events(project, hand_built_events())
    services.rollups_refresh_dirty(project=project)
    return project, rows, key_client(project, "read")


def inside(rows, start=START, end=END, **match):
    return [r for r in rows if start <= r["ts"] < end and all(r[k] == v for k, v in match.items())]


def money(value: Decimal) -> Decimal:
    return Decimal(value)


@pytest.mark.django_db
def test_features_answer_the_window_asked_and_echo_it(ny):
    project, rows, client = ny
    body = client.get("/api/v1/features", QUERY).json()
    start, end = dt.datetime.fromisoformat(body["start"]), dt.datetime.fromisoformat(body["end"])
    assert (start, end) == (START, END)
    by_name = {row["feature"]: row for row in body["results"]}
    for name in ("ticket-triage", "search-rank"):
        calls = inside(rows, feature=name)
        row = by_name[name]
        assert row["calls"] == len(calls)
        assert row["requests"] == sum(1 for r in calls if r["role"] == "primary")
        assert row["output_tokens"] == sum(r["output_tokens"] for r in calls)
        assert Decimal(row["cost_usd"]) == sum(r["cost_usd"] for r in calls)
        routed = [r for r in calls if r["role"] in ("primary", "escalation")]
        assert row["pro_share"] == pytest.approx(sum(1 for r in routed if r["tier"] == "pro") / len(routed))
        latencies = [r["latency_ms"] for r in calls]
        assert row["latency_p50_ms"] == pytest.approx(quantile(latencies, 0.5))
        assert row["latency_p95_ms"] == pytest.approx(quantile(latencies, 0.95))
        assert row["ttft_p95_ms"] == pytest.approx(quantile([r["ttft_ms"] for r in calls], 0.95))
    # The slow edge calls are in: without the partial days p95 would be ~150 ms.
    assert by_name["ticket-triage"]["latency_p95_ms"] > 8000


@pytest.mark.django_db
def test_pro_share_change_compares_the_hour_exact_7_days_with_the_28_before(ny):
    project, rows, client = ny
    body = client.get("/api/v1/features", QUERY).json()
    row = next(r for r in body["results"] if r["feature"] == "ticket-triage")
    # Wall-clock days in New York (Nov 1 has 25 hours): recent = [end - 7 d, end), base = the 28 d before.
    recent_from = dt.datetime(2026, 11, 24, 9, 0, tzinfo=NY)
    base_from = dt.datetime(2026, 10, 27, 9, 0, tzinfo=NY)

    def share(start, end):
        routed = [r for r in inside(rows, start, end, feature="ticket-triage") if r["role"] in ("primary", "escalation")]
        return sum(1 for r in routed if r["tier"] == "pro") / len(routed)

    assert share(base_from, recent_from) == 0.5  # the 08:30 Pro call of Nov 24 and the 09:30 Lite of Oct 27
    assert row["pro_share_change"] == pytest.approx(share(recent_from, END) - share(base_from, recent_from))


@pytest.mark.django_db
def test_models_answer_the_window_asked(ny):
    project, rows, client = ny
    body = client.get("/api/v1/models", QUERY).json()
    assert dt.datetime.fromisoformat(body["start"]) == START
    got = {(r["model"], r["tier"]): (r["calls"], Decimal(r["cost_usd"]), r["output_tokens"]) for r in body["results"]}
    expected = {}
    for r in inside(rows):
        calls, cost, output = expected.get((r["model"], r["tier"]), (0, Decimal(0), 0))
        expected[(r["model"], r["tier"])] = (calls + 1, cost + r["cost_usd"], output + r["output_tokens"])
    assert got == expected


@pytest.mark.django_db
def test_a_daily_series_has_one_point_per_local_day_and_its_edge_points_cover_the_window_hours(ny):
    project, rows, client = ny
    for group_by in (None, "tier"):
        query = {**QUERY, "metric": "calls", "granularity": "day", "feature": "search-rank"}
        if group_by:
            query["group_by"] = group_by
        body = client.get("/api/v1/timeseries", query).json()
        days = [dt.date(2026, 11, 28), dt.date(2026, 11, 29), dt.date(2026, 11, 30), dt.date(2026, 12, 1)]
        got = {(dt.datetime.fromisoformat(p["t"]).astimezone(NY).date(), p.get("group")): p["value"]
               for p in body["results"]}
        assert sorted({day for day, _ in got}) == days
        for (day, group), value in got.items():
            assert value == sum(1 for r in inside(rows, feature="search-rank")
                                if r["ts"].astimezone(NY).date() == day and group in (None, r["tier"]))
        first = sum(v for (day, _), v in got.items() if day == days[0])
        assert first == sum(1 for r in rows if r["feature"] == "search-rank"
                            and START <= r["ts"] < dt.datetime(2026, 11, 29, 0, 0, tzinfo=NY))
        assert 0 < first < sum(1 for r in rows if r["feature"] == "search-rank"
                               and r["ts"].astimezone(NY).date() == days[0])


@pytest.mark.django_db
def test_cost_series_of_the_last_24_hours_ends_with_the_current_partial_day(ny):
    project, rows, client = ny
    query = {"start": "2026-11-30T14:00:00Z", "end": "2026-12-01T14:00:00Z", "metric": "cost",
             "granularity": "day"}
    body = client.get("/api/v1/timeseries", query).json()
    start, end = dt.datetime(2026, 11, 30, 9, 0, tzinfo=NY), END
    values = {dt.datetime.fromisoformat(p["t"]).astimezone(NY).date(): Decimal(p["value"]) for p in body["results"]}
    assert values == {day: sum((r["cost_usd"] for r in inside(rows, start, end)
                                if r["ts"].astimezone(NY).date() == day), Decimal(0))
                      for day in (dt.date(2026, 11, 30), dt.date(2026, 12, 1))}


@pytest.mark.django_db
@pytest.mark.parametrize("url, query, field", [
    ("/api/v1/features", {**QUERY, "attr.customer": "acme"}, "start"),
    ("/api/v1/features", {"start": "2026-11-29", "end": "2026-12-01T14:00:00Z", "attr.customer": "acme"}, "end"),
    ("/api/v1/breakdown", {"dimension": "customer", "start": "2026-11-29T05:00:00Z",
                           "end": "2026-12-01T10:00:00Z"}, "end"),
    ("/api/v1/timeseries", {**QUERY, "metric": "calls", "group_by": "customer"}, "start"),
])
def test_day_only_data_needs_project_timezone_midnights(ny, url, query, field):
    project, rows, client = ny
    response = client.get(url, query)
    assert response.status_code == 400, response.content
    error = response.json()["errors"][0]
    assert (error["field"], error["code"]) == (field, "not_midnight")
    assert "America/New_York" in error["message"]


@pytest.mark.django_db
def test_day_only_data_on_midnights_is_answered(ny):
    project, rows, client = ny
    # 2026-11-29T05:00Z is midnight in New York: accepted as is.
    body = client.get("/api/v1/breakdown", {"dimension": "customer", "start": "2026-11-29T05:00:00Z",
                                            "end": "2026-12-01"}).json()
    assert dt.datetime.fromisoformat(body["start"]) == dt.datetime(2026, 11, 29, tzinfo=NY)
    body = client.get("/api/v1/features", {"start": "2026-11-29", "end": "2026-12-01"}).json()
    row = next(r for r in body["results"] if r["feature"] == "search-rank")
    assert row["calls"] == len(inside(rows, dt.datetime(2026, 11, 29, tzinfo=NY), dt.datetime(2026, 12, 1, tzinfo=NY),
                                      feature="search-rank"))


@pytest.mark.django_db
def test_default_window_is_30_days_to_the_next_hour(ny):
    from django.utils import timezone

    project, rows, client = ny
    body = client.get("/api/v1/features").json()
    end, start = dt.datetime.fromisoformat(body["end"]), dt.datetime.fromisoformat(body["start"])
    now = timezone.now()
    assert now < end <= now + dt.timedelta(hours=1) and end.minute == 0
    assert end - start == dt.timedelta(days=30)


@pytest.mark.django_db
def test_pages_take_the_picker_s_local_times_and_offer_hour_exact_presets(ny, client, user):
    project, rows, _ = ny
    client.force_login(user)
    response = client.get(f"/p/{project.slug}/features/", PICKED, secure=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nov 28, 14:00 – Dec 1, 2026 09:00 (excl., America/New_York)" in html
    assert 'name="start" value="2026-11-28T14:00"' in html and 'name="end" value="2026-12-01T09:00"' in html
    for label in ("Last 24 h", "7 d", "30 d"):
        assert f">{label}</a>" in html
    page = client.get(f"/p/{project.slug}/features/search-rank/", PICKED, secure=True)
    assert page.status_code == 200
    assert page.context["metrics"]["calls"] == len(inside(rows, feature="search-rank"))


def daily_costs(rows, feature):
    """{New York day: cost} of one feature's calls inside the window, in plain Python."""
    costs = {}
    for r in inside(rows, feature=feature):
        day = r["ts"].astimezone(NY).date()
        costs[day] = costs.get(day, Decimal(0)) + r["cost_usd"]
    return costs


@pytest.mark.django_db
def test_features_page_sparklines_cover_only_the_window_hours_on_their_edge_days(ny):
    from costwatch.metrics import selectors

    project, rows, _ = ny
    got = selectors.feature_daily_costs(project=project, start=START, end=END)
    ids = dict(project.features.values_list("name", "pk"))
    for name in ("ticket-triage", "search-rank"):
        expected = daily_costs(rows, name)
        assert set(expected) == {dt.date(2026, 11, d) for d in (28, 29, 30)} | {dt.date(2026, 12, 1)}
        assert got[ids[name]] == expected
    # Whole edge days would have been more: the events run from Nov 27 to Dec 2, every 50 minutes.
    whole_edge = sum(r["cost_usd"] for r in rows if r["ts"].astimezone(NY).date() == dt.date(2026, 11, 28)
                     and r["feature"] == "search-rank")
    assert got[ids["search-rank"]][dt.date(2026, 11, 28)] < whole_edge


@pytest.mark.django_db
def test_features_page_draws_the_hour_exact_daily_costs(ny, client, user):
    project, rows, _ = ny
    client.force_login(user)
    response = client.get(f"/p/{project.slug}/features/", PICKED, secure=True)
    row = next(r for r in response.context["rows"] if r["feature"] == "search-rank")
    points = row["sparkline"].split('<polyline points="')[1].split('"')[0].split()
    expected = daily_costs(rows, "search-rank")
    days = [dt.date(2026, 11, 28), dt.date(2026, 11, 29), dt.date(2026, 11, 30), dt.date(2026, 12, 1)]
    top = max(expected.values())
    # The line's height is 28 px with 2 px margins: y = 26 - value / top * 24.
    heights = [(26 - float(p.split(",")[1])) / 24 for p in points]
    assert heights == pytest.approx([float(expected[day] / top) for day in days], abs=0.01)


@pytest.mark.django_db
def test_whatif_output_prices_weigh_only_the_window_s_output_tokens(ny):
    from costwatch.metrics import selectors

    project, rows, _ = ny
    for name in ("ticket-triage", "search-rank"):
        expected = {}
        for r in inside(rows, feature=name):
            key = (r["model"], r["tier"])
            expected[key] = expected.get(key, 0) + r["output_tokens"]
        got = selectors.feature_output_tokens_by_model(project=project, feature=name, start=START, end=END)
        assert got == expected

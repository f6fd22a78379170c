"""GET /api/v1/recommendations: the `window` parameter, and the answer computed from rollups and pairs
only, once per data version (a refresh that changed data or a price change computes it afresh)."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from costwatch.metrics.services import project_refresh
from tests.ingest.helpers import event, iso, price, recent

pytestmark = pytest.mark.django_db
URL = "/api/v1/recommendations"
PRO_CALL = Decimal(100_000) * Decimal("2.00") / 10**6 + Decimal(20_000) * Decimal("8.00") / 10**6
LITE_CALL = Decimal(100_000) * Decimal("0.10") / 10**6 + Decimal(20_000) * Decimal("0.40") / 10**6


@pytest.fixture(autouse=True)
def prices():
    price("test-lite-1", tier="lite")  # 0.10 in / 0.40 out per 1M
    price("test-pro-1", tier="pro", input_per_mtok="2.00", output_per_mtok="8.00")


def send(client, events):
    response = client.post("/api/v1/events", data=json.dumps({"events": events}), content_type="application/json")
    assert response.status_code == 200, response.json()


def calls(prefix, count, *, model="test-pro-1", ts=None, route_reason="hard"):
    ts = ts or recent(hours=2)
    reason = {"route_reason": route_reason} if route_reason else {}
    return [event(f"{prefix}-{i}", model=model, feature="chat", input_tokens=100_000, output_tokens=20_000,
                  timestamp=iso(ts), **reason) for i in range(count)]


def route_reason_move(client, **query):
    response = client.get(URL, {"feature": "chat", **query})
    assert response.status_code == 200, response.json()
    (move,) = [r for r in response.json()["results"] if r["move"] == "route_reason_to_lite"]
    return move


def test_the_window_picks_the_days_and_scales_to_a_month(project, ingest_client, read_client):
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    send(ingest_client, calls("new", 3) + calls("old", 5, ts=ten_days_ago)
         + calls("lite", 1, model="test-lite-1", route_reason=None))
    project_refresh(project=project)
    default = route_reason_move(read_client)
    week = route_reason_move(read_client, window="7d")
    assert default["evidence"]["window"] == "28d" and week["evidence"]["window"] == "7d"
    assert Decimal(default["monthly_savings_usd"]) == (8 * (PRO_CALL - LITE_CALL) * 30 / 28).quantize(Decimal("0.01"))
    assert Decimal(week["monthly_savings_usd"]) == (3 * (PRO_CALL - LITE_CALL) * 30 / 7).quantize(Decimal("0.01"))
    day = read_client.get(URL, {"window": "24h"}).json()["results"]
    assert {r["move"] for r in day} >= {"route_to_lite"}
    assert all(r["evidence"]["window"] == "24h" for r in day)


def test_a_bad_window_is_named(read_client):
    response = read_client.get(URL, {"window": "5d", "status": "great"})
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"window", "status"}
    assert "24h, 7d, 28d" in next(e["message"] for e in response.json()["errors"] if e["field"] == "window")


def test_the_savings_page_has_the_window_picker(client, user, project, ingest_client):
    send(ingest_client, calls("new", 3) + calls("lite", 1, model="test-lite-1", route_reason=None))
    project_refresh(project=project)
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/savings/", {"window": "7d"}).content.decode()
    assert '<option value="7d" selected>last 7d</option>' in html
    assert "x 30 / 7 days" in html
    html = client.get(f"/p/{project.slug}/savings/", {"window": "1y"}).content.decode()
    assert "<b>window</b>" in html and '<option value="28d" selected>' in html


def test_reads_rollups_only_and_recomputes_only_when_data_or_prices_change(project, ingest_client, read_client):
    send(ingest_client, calls("a", 2) + calls("lite", 1, model="test-lite-1", route_reason=None))
    project_refresh(project=project)
    with CaptureQueriesContext(connection) as first:
        two = route_reason_move(read_client)
    reads = " ".join(q["sql"] for q in first.captured_queries)
    assert "metrics_hourlyrollup" in reads and "metrics_savingspair" in reads
    assert "ingest_event" not in reads  # never raw events, whatever their number
    with CaptureQueriesContext(connection) as again:
        assert route_reason_move(read_client) == two
    assert not any("metrics_hourlyrollup" in q["sql"] for q in again.captured_queries)  # the cached answer
    send(ingest_client, calls("b", 1))
    assert route_reason_move(read_client) == two  # not before the refresh
    project_refresh(project=project)
    three = route_reason_move(read_client)
    assert Decimal(three["monthly_savings_usd"]) == (3 * (PRO_CALL - LITE_CALL) * 30 / 28).quantize(Decimal("0.01"))
    price("test-pro-1", tier="pro", input_per_mtok="4.00", output_per_mtok="8.00",
          effective_from=datetime.now(UTC) - timedelta(minutes=1))
    repriced = route_reason_move(read_client)
    extra = Decimal(100_000) * Decimal("2.00") / 10**6  # input now 4.00 instead of 2.00 per 1M
    assert Decimal(repriced["monthly_savings_usd"]) == (
        3 * (PRO_CALL + extra - LITE_CALL) * 30 / 28).quantize(Decimal("0.01"))

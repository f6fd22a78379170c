"""GET /api/v1/recommendations from hand-built events: statuses never `recommended` on thin, contrary or
stale evidence, and each move's savings arithmetic from plain Python."""

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from costwatch.metrics.services import project_refresh
from tests.ingest.helpers import event, iso, price, recent

pytestmark = pytest.mark.django_db
URL = "/api/v1/recommendations"
T_975_DF29 = 2.045  # textbook t table, 29 degrees of freedom


@pytest.fixture(autouse=True)
def prices():
    price("test-lite-1", tier="lite")  # 0.10 in / 0.40 out per 1M
    price("test-pro-1", tier="pro", input_per_mtok="2.00", output_per_mtok="8.00")


def send(client, events):
    for start in range(0, len(events), 1000):
        response = client.post("/api/v1/events", data=json.dumps({"events": events[start:start + 1000]}),
                               content_type="application/json")
        assert response.status_code == 200, response.json()


def pairs(feature, diffs, *, ts=None, pro_quality=0.5):
    ts = ts or datetime.now(UTC).replace(minute=10, second=0, microsecond=0) - timedelta(hours=2)
    events = []
    for i, diff in enumerate(diffs):
        common = {"feature": feature, "timestamp": iso(ts)}
        events += [event(f"{feature}-l{i}", model="test-lite-1", quality=pro_quality + diff, **common),
                   event(f"{feature}-s{i}", model="test-pro-1", role="shadow", parent_event_id=f"{feature}-l{i}",
                         quality=pro_quality, **common)]
    return events


def pro_calls(feature, count, **fields):
    return [event(f"{feature}-p{i}-{fields.get('route_reason', '')}", model="test-pro-1", feature=feature,
                  input_tokens=100_000, output_tokens=20_000, **fields) for i in range(count)]


def lite_moves(client, project):
    project_refresh(project=project)
    response = client.get(URL)
    assert response.status_code == 200, response.json()
    return {r["feature"]: r for r in response.json()["results"] if r["move"] == "route_to_lite"}


def test_thin_contrary_and_stale_evidence_are_never_recommended(project, ingest_client, read_client):
    spread = 0.05
    mean = -0.03 + T_975_DF29 * spread / math.sqrt(29)  # lower bound exactly -0.03 (+-1 alternating diffs)
    contrary = [mean + (spread if i % 2 else -spread) for i in range(30)]
    stale_ts = datetime.now(UTC) - timedelta(days=15)
    events = (pairs("thin", [0.0] * 29) + pairs("contrary", contrary) + pairs("stale", [0.0] * 30, ts=stale_ts)
              + pairs("good", [0.0] * 30))
    for feature in ("thin", "contrary", "stale", "good", "unshadowed"):
        events += pro_calls(feature, 3)
    events += [event("unshadowed-lite", model="test-lite-1", feature="unshadowed")]
    send(ingest_client, events)
    moves = lite_moves(read_client, project)
    assert moves["thin"]["status"] == "thin_evidence"
    assert moves["thin"]["evidence"]["pairs"] == 29 and "1 more" in moves["thin"]["message"]
    assert moves["contrary"]["status"] == "lite_worse"
    assert moves["contrary"]["evidence"]["ci_low"] == pytest.approx(-0.03, abs=1e-3)
    assert moves["stale"]["status"] == "stale" and moves["stale"]["evidence"]["pairs"] == 30
    assert moves["good"]["status"] == "recommended"
    assert moves["unshadowed"]["status"] == "thin_evidence"
    assert moves["unshadowed"]["evidence"]["pairs"] == 0
    assert moves["unshadowed"]["evidence"]["null_reasons"]["mean_diff"] == "no pairs in the window"
    assert "POST /api/v1/scores" in moves["unshadowed"]["message"]
    filtered = read_client.get(URL, {"status": "recommended"}).json()["results"]
    assert {(r["feature"], r["move"]) for r in filtered if r["move"] != "cap_output"} == {("good", "route_to_lite")}


def test_savings_arithmetic_of_each_move(project, ingest_client, read_client):
    diffs = [0.0] * 28 + [-0.2, -0.2]  # 2 of 30 pairs: Lite more than 0.1 below Pro
    events = pairs("chat", diffs) + pro_calls("chat", 6) + pro_calls("chat", 4, route_reason="hard")
    send(ingest_client, events)
    project_refresh(project=project)
    results = read_client.get(URL, {"feature": "chat"}).json()["results"]
    by_move = {r["move"]: r for r in results}
    pro_cost = Decimal(100_000) * Decimal("2.00") / 10**6 + Decimal(20_000) * Decimal("8.00") / 10**6
    lite_cost = Decimal(100_000) * Decimal("0.10") / 10**6 + Decimal(20_000) * Decimal("0.40") / 10**6
    # route_to_lite: routed calls = 30 Lite primaries + 10 Pro; target = max(5%, 2/30)
    target = max(0.05, 2 / 30)
    share = 10 / 40
    moved = Decimal(str((share - target) / share))
    expected = (10 * (pro_cost - lite_cost) * moved * 30 / 28).quantize(Decimal("0.01"))
    route = by_move["route_to_lite"]
    assert route["target_pro_share"] == pytest.approx(target, abs=1e-4)
    assert Decimal(route["monthly_savings_usd"]) == expected
    # route_reason_to_lite: every Pro call with route_reason "hard" moves (no pairs with that reason: thin)
    reason = by_move["route_reason_to_lite"]
    assert reason["route_reason"] == "hard" and reason["status"] == "thin_evidence"
    assert Decimal(reason["monthly_savings_usd"]) == (4 * (pro_cost - lite_cost) * 30 / 28).quantize(Decimal("0.01"))
    # ranked by dollars
    dollars = [Decimal(r["monthly_savings_usd"]) for r in results]
    assert dollars == sorted(dollars, reverse=True)


def test_unknown_feature_and_status_are_named(read_client):
    response = read_client.get(URL, {"status": "great"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "status"
    response = read_client.get(URL, {"feature": "nope"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "feature"


def test_the_savings_page_ranks_moves_and_lists_features_without_evidence(client, user, project, ingest_client):
    send(ingest_client, pairs("good", [0.0] * 30) + pro_calls("good", 6) + pro_calls("dark", 3)
         + [event("dark-lite", model="test-lite-1", feature="dark")])
    project_refresh(project=project)
    client.force_login(user)
    response = client.get(f"/p/{project.slug}/savings/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/p/{project.slug}/savings/" class="active">Savings</a>' in html
    ranked = response.context["ranked"]
    assert [(m["feature"], m["move"], m["status"]) for m in ranked][0] == ("good", "route_to_lite", "recommended")
    assert 'data-feature="good" data-move="route_to_lite" data-status="recommended"' in html
    assert [(m["feature"], m["evidence"]["pairs"]) for m in response.context["no_evidence"]] == [("dark", 0)]
    assert "POST /api/v1/scores" in html.split('data-testid="no-evidence"')[1]


def bucket_midpoint(tokens: int) -> float:
    """Plain Python twin of docs/rollups.md's log buckets: bucket i >= 1 holds [1.25**(i-1), 1.25**i),
    and stands for its geometric midpoint 1.25**(i - 0.5)."""
    index = math.floor(math.log(tokens) / math.log(1.25)) + 1
    return 1.25 ** (index - 0.5)


def test_cap_output_savings_are_the_documented_arithmetic_to_the_cent(project, ingest_client, read_client):
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)
    outputs = {"test-pro-1": [200] * 200 + [240] * 50 + [30_000] * 2, "test-lite-1": [300] * 147 + [9_000]}
    events = []
    for model, values in outputs.items():
        for i, tokens in enumerate(values):
            ts = three_days_ago if i % 2 else recent(hours=1)  # whole days (FeatureDay) and edge hours alike
            events.append(event(f"{model}-{i}", model=model, feature="long", output_tokens=tokens, timestamp=iso(ts)))
    send(ingest_client, events)
    project_refresh(project=project)
    (cap,) = [r for r in read_client.get(URL).json()["results"] if r["move"] == "cap_output"]
    # p99 (nearest rank) of every call's output tokens, as its bucket's midpoint, whole tokens
    everything = sorted(bucket_midpoint(t) for values in outputs.values() for t in values)
    cap_tokens = int(everything[math.ceil(0.99 * len(everything)) - 1])
    assert cap["cap_tokens"] == cap_tokens
    # per tier: its output tokens x the share of its output above the cap (calls at their bucket
    # midpoints) x that model's current output price; monthly = x 30 / 28
    out_price = {"test-pro-1": Decimal("8.00"), "test-lite-1": Decimal("0.40")}
    window_savings = Decimal(0)
    for model, values in outputs.items():
        mids = [bucket_midpoint(t) for t in values]
        above = 1 - sum(min(m, cap_tokens) for m in mids) / sum(mids)
        window_savings += Decimal(sum(values)) * Decimal(str(above)) * out_price[model] / 10**6
    assert cap["status"] == "recommended"
    assert Decimal(cap["monthly_savings_usd"]) == (window_savings * 30 / 28).quantize(Decimal("0.01"))
    assert Decimal(cap["monthly_savings_usd"]) > Decimal("0.10")


def test_both_tiers_are_re_priced_at_current_prices(project, ingest_client, read_client):
    send(ingest_client, pairs("chat", [0.0] * 30) + pro_calls("chat", 10))
    project_refresh(project=project)
    before = {r["move"]: r for r in read_client.get(URL, {"feature": "chat"}).json()["results"]}
    # the prices change after the events: stored event costs keep the old prices
    changed = datetime.now(UTC) - timedelta(minutes=1)
    price("test-pro-1", tier="pro", input_per_mtok="3.00", output_per_mtok="12.00", effective_from=changed)
    price("test-lite-1", tier="lite", input_per_mtok="0.20", output_per_mtok="0.80", effective_from=changed)
    after = {r["move"]: r for r in read_client.get(URL, {"feature": "chat"}).json()["results"]}
    target, share = 0.05, 10 / 40  # every pair equal: target = the 5% floor; 30 Lite + 10 Pro routed calls
    moved = Decimal(str((share - target) / share))

    def monthly(pro_in, pro_out, lite_in, lite_out):
        per_call = (Decimal(100_000) * (Decimal(pro_in) - Decimal(lite_in))
                    + Decimal(20_000) * (Decimal(pro_out) - Decimal(lite_out))) / 10**6
        return (10 * per_call * moved * 30 / 28).quantize(Decimal("0.01"))

    assert Decimal(before["route_to_lite"]["monthly_savings_usd"]) == monthly("2.00", "8.00", "0.10", "0.40")
    assert Decimal(after["route_to_lite"]["monthly_savings_usd"]) == monthly("3.00", "12.00", "0.20", "0.80")

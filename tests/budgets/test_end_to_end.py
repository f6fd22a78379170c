"""Events in through POST /api/v1/events -> rollup refresh -> rule cycle -> alert with its numbers.

Expected numbers are counted here from the events the test sends. Events use a model no
catalogue prices plus `cost_usd`, so their cost is exactly what the test says.
"""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.utils import timezone

from budgets.models import Alert, Rule
from budgets.services import rules_evaluate
from costwatch.metrics.services import rollups_refresh_dirty

pytestmark = pytest.mark.django_db
_ids = itertools.count()


def event(hours_ago=0.5, *, feature="ticket-triage", cap=1024, tier="lite", role="primary", route_reason=None,
          output_tokens=200, cost="0.001", model=None, **extra):
    ts = timezone.now() - dt.timedelta(hours=hours_ago)
    body = {"event_id": f"e2e-{next(_ids)}", "timestamp": ts.isoformat(), "feature": feature,
            "model": model or f"acme-test-{tier}", "tier": tier, "input_tokens": 100, "output_tokens": output_tokens,
            "max_output_tokens": cap, "role": role, **extra}
    if cost is not None:
        body["cost_usd"] = cost
    if route_reason:
        body["route_reason"] = route_reason
    return body


def send(client, project, events):
    for start in range(0, len(events), 1000):
        response = client.post("/api/v1/events", {"events": events[start:start + 1000]}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["accepted"] == len(events[start:start + 1000])
    rollups_refresh_dirty(project=project)
    return rules_evaluate(project=project, now=timezone.now())


def keep_only(project, kind):
    rules_evaluate(project=project, now=timezone.now())  # the first cycle creates the defaults
    Rule.objects.filter(project=project).exclude(kind=kind).delete()


def _verdict(evaluations, kind, feature="ticket-triage"):
    [verdict] = [e.verdict for e in evaluations if e.kind == kind and e.scope.get("feature", feature) == feature]
    return verdict


def _prime(ingest_client, project, kind):
    send(ingest_client, project, [event(hours_ago=200, feature="warmup")])
    keep_only(project, kind)


@pytest.mark.parametrize(("uncapped", "fires"), [(10, True), (6, True), (5, False)])
def test_unbounded_output_from_events(project, ingest_client, uncapped, fires):
    _prime(ingest_client, project, "unbounded_output")
    events = [event(hours_ago=i % 20 + 0.2, cap=None if i < uncapped else 1024) for i in range(120)]
    verdict = _verdict(send(ingest_client, project, events), "unbounded_output")
    assert verdict.numbers["calls_24h"] == 120
    assert verdict.numbers["uncapped_calls_24h"] == uncapped
    assert verdict.numbers["uncapped_share"] == round(uncapped / 120, 4)
    assert verdict.fired is fires  # 5/120 = 4.2% stays under 5%; 6/120 = 5% fires
    alerts = Alert.objects.filter(project=project, kind="unbounded_output")
    assert alerts.count() == (1 if fires else 0)
    if fires:
        assert alerts.get().numbers["uncapped_calls_24h"] == uncapped


def test_unbounded_output_volume_guard_from_events(project, ingest_client):
    _prime(ingest_client, project, "unbounded_output")
    verdict = _verdict(send(ingest_client, project, [event(cap=None) for _ in range(99)]), "unbounded_output")
    assert verdict.numbers["uncapped_share"] == 1.0 and not verdict.fired


def test_a_cap_at_the_huge_cap_size_counts_as_no_cap(project, ingest_client):
    _prime(ingest_client, project, "unbounded_output")
    events = [event(cap=8192 if i < 10 else 8191) for i in range(100)]
    verdict = _verdict(send(ingest_client, project, events), "unbounded_output")
    assert verdict.numbers["uncapped_calls_24h"] == 10 and verdict.fired


@pytest.mark.parametrize(("pro", "fires"), [(40, True), (39, False)])
def test_pro_default_from_events(project, ingest_client, pro, fires):
    _prime(ingest_client, project, "pro_default")
    events = [event(tier="pro" if i < pro else "lite") for i in range(100)]
    events += [event(role="triage", tier="lite") for _ in range(30)]  # triage is not in the pro_share denominator
    verdict = _verdict(send(ingest_client, project, events), "pro_default")
    assert verdict.numbers["routed_calls_24h"] == 100 and verdict.numbers["pro_calls_24h"] == pro
    assert verdict.fired is fires
    assert Alert.objects.filter(kind="pro_default").exists() is fires


def test_pro_by_default_route_from_events(project, ingest_client):
    _prime(ingest_client, project, "pro_default")
    events = [event(tier="pro", route_reason="default" if i < 30 else "complex") for i in range(60)]
    events += [event(tier="lite") for _ in range(140)]
    verdict = _verdict(send(ingest_client, project, events), "pro_default")
    assert verdict.numbers["pro_share"] == 0.3
    assert verdict.numbers["pro_default_route_calls_24h"] == 30 and verdict.fired


@pytest.mark.parametrize(("recent_pro", "fires"), [(150, True), (100, False)])
def test_share_drift_from_events(project, ingest_client, recent_pro, fires):
    _prime(ingest_client, project, "share_drift")
    # 28 days before the last 7: 400 routed calls, 25% Pro. Last 7 days: 300 calls.
    baseline = [event(hours_ago=200 + i, tier="pro" if i % 4 == 0 else "lite") for i in range(400)]
    recent = [event(hours_ago=1 + i % 150, tier="pro" if i < recent_pro else "lite") for i in range(300)]
    verdict = _verdict(send(ingest_client, project, baseline + recent), "share_drift")
    assert verdict.numbers["routed_calls_7d"] == 300 and verdict.numbers["routed_calls_28d_before"] == 400
    assert verdict.numbers["pro_share_28d_before"] == 0.25
    assert verdict.numbers["pro_share_7d"] == round(recent_pro / 300, 4)
    assert verdict.fired is fires  # 50% vs 25% fires; 33% is +8 points: no


def test_share_drift_needs_200_calls_in_each_window_from_events(project, ingest_client):
    _prime(ingest_client, project, "share_drift")
    baseline = [event(hours_ago=200 + i, tier="lite") for i in range(199)]
    recent = [event(hours_ago=1 + i % 100, tier="pro") for i in range(300)]
    verdict = _verdict(send(ingest_client, project, baseline + recent), "share_drift")
    assert verdict.numbers["routed_calls_28d_before"] == 199 and not verdict.fired


def test_escalation_band_from_events(project, ingest_client):
    _prime(ingest_client, project, "escalation_band")
    events = [event(hours_ago=1 + i % 100) for i in range(200)]
    events += [event(hours_ago=1, role="escalation", tier="pro") for _ in range(50)]
    events += [event(hours_ago=1, role="triage") for _ in range(10)]
    verdict = _verdict(send(ingest_client, project, events), "escalation_band")
    assert verdict.numbers["escalation_rate"] == 0.25 and verdict.fired


def test_unpriced_traffic_from_events(project, ingest_client):
    _prime(ingest_client, project, "unpriced_traffic")
    events = [event(model="mystery-model-x", cost=None), event(model="mystery-model-x", cost=None), event()]
    [evaluation] = [e for e in send(ingest_client, project, events) if e.kind == "unpriced_traffic"]
    assert evaluation.verdict.numbers["models"] == {"mystery-model-x": 2}
    alert = Alert.objects.get(kind="unpriced_traffic")
    assert "mystery-model-x (2)" in alert.message


def test_spend_spike_from_events(project, ingest_client):
    _prime(ingest_client, project, "spend_spike")
    baseline = [event(hours_ago=26 + day * 24, cost="1.00") for day in range(7)]  # $7 over 28 days
    spike = [event(hours_ago=1, cost="1.00") for _ in range(6)]  # $6 in the last 24 h
    verdict = _verdict(send(ingest_client, project, baseline + spike), "spend_spike")
    assert verdict.numbers["cost_24h_usd"] == "6.000000"
    assert verdict.numbers["mean_daily_cost_28d_usd"] == "0.250000"
    assert verdict.numbers["baseline_active_days"] == 7
    assert verdict.fired


def test_spend_budget_and_budget_status_from_events(project, ingest_client, manage_client, key_client):
    _prime(ingest_client, project, "spend_budget")
    response = manage_client.post("/api/v1/rules", {"kind": "spend_budget", "feature": "warmup", "params": {
        "period": "month", "amount_usd": "2.00", "thresholds": [50, 100]}}, format="json")
    assert response.status_code == 201
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    hours_into_month = (timezone.now() - start).total_seconds() / 3600
    events = [event(hours_ago=min(0.1, hours_into_month / 2), feature="warmup", cost="0.75")
              for _ in range(2)]
    send(ingest_client, project, events)
    alert = Alert.objects.get(kind="spend_budget")
    spent = Decimal("0.75") * 2 + (Decimal("0.001") if hours_into_month > 200 else 0)
    assert alert.level == 50 and Decimal(alert.numbers["spent_usd"]) == spent
    status = key_client(project, "ingest").get("/api/v1/budget-status?feature=warmup").json()
    assert status["over_budget"] is False and status["budgets"][0]["level"] == 50

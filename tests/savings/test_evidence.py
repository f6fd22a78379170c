"""Savings pairs and evidence from hand-built events through the events and scores APIs, real PostgreSQL."""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from costwatch.metrics.models import SavingsPair
from costwatch.metrics.selectors.savings import savings_evidence, t_quantile
from costwatch.metrics.services import project_refresh
from tests.ingest.helpers import event, iso, price, recent

pytestmark = pytest.mark.django_db
T_975_DF9 = 2.262  # textbook table: two-sided 95%, 9 degrees of freedom
T_975_DF29 = 2.045


@pytest.fixture(autouse=True)
def prices():
    price("test-lite-1", tier="lite")
    price("test-pro-1", tier="pro", input_per_mtok="2.00", output_per_mtok="8.00")


def send(client, events):
    response = client.post("/api/v1/events", data=json.dumps({"events": events}), content_type="application/json")
    assert response.status_code == 200, response.json()


def lite(event_id, quality=None, **fields):
    return event(event_id, model="test-lite-1", role="primary", quality=quality, latency_ms=400, **fields)


def shadow(event_id, parent=None, quality=None, **fields):
    if parent:
        fields["parent_event_id"] = parent
    return event(event_id, model="test-pro-1", role="shadow", quality=quality, latency_ms=1200, **fields)


def window():
    now = datetime.now(UTC)
    return {"start": now - timedelta(days=28), "end": now + timedelta(hours=1)}


def test_pairing_by_parent_id_and_by_request_id(project, ingest_client):
    send(ingest_client, [
        lite("l1", 0.8), shadow("s1", parent="l1", quality=0.9),
        lite("l2", 0.7, request_id="req-2"), shadow("s2", quality=0.6, request_id="req-2"),
        lite("l3", 0.5), shadow("s3", parent="nobody", quality=0.9),  # no partner
        lite("l4"), shadow("s4", parent="l4", quality=0.9),  # Lite not scored
        lite("l5", 0.5, request_id="r5"), event("e5", model="test-pro-1", role="escalation", request_id="r5",
                                                quality=0.7),
    ])
    project_refresh(project=project)
    pairs = {(p.pro_event_id, p.kind): (p.lite_quality, p.pro_quality) for p in SavingsPair.objects.all()}
    assert sorted(pairs.values()) == [(0.5, 0.7), (0.7, 0.6), (0.8, 0.9)]
    assert sorted(kind for _, kind in pairs) == ["escalation", "shadow", "shadow"]
    evidence = savings_evidence(project=project, **window())
    feature_id = SavingsPair.objects.first().feature_id
    shadows = evidence[(feature_id, "shadow")]
    assert shadows.pairs == 2
    assert shadows.mean_diff == pytest.approx(((0.8 - 0.9) + (0.7 - 0.6)) / 2)
    assert shadows.lite_at_least_as_good_share == 0.5
    assert (shadows.lite_latency_p50_ms, shadows.pro_latency_p50_ms) == (400, 1200)
    assert evidence[(feature_id, "escalation")].pairs == 1  # beside, not pooled


def test_interval_against_a_textbook_t_quantile(project, ingest_client):
    diffs = [0.05, -0.02, 0.0, 0.03, -0.04, 0.01, 0.02, -0.01, 0.04, 0.0]
    events = []
    for i, diff in enumerate(diffs):
        events += [lite(f"l{i}", 0.5 + diff), shadow(f"s{i}", parent=f"l{i}", quality=0.5)]
    send(ingest_client, events)
    project_refresh(project=project)
    (evidence,) = savings_evidence(project=project, **window()).values()
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = T_975_DF9 * sd / math.sqrt(n)
    assert evidence.pairs == n
    assert evidence.mean_diff == pytest.approx(mean, abs=1e-9)
    assert evidence.ci_low == pytest.approx(mean - half, abs=1e-3)
    assert evidence.ci_high == pytest.approx(mean + half, abs=1e-3)


def test_t_quantile_matches_the_table():
    assert t_quantile(0.975, 9) == pytest.approx(T_975_DF9, abs=1e-3)
    assert t_quantile(0.975, 29) == pytest.approx(T_975_DF29, abs=1e-3)
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)


def test_a_late_score_changes_the_evidence_after_a_refresh(project, ingest_client):
    send(ingest_client, [lite("l1", 0.8), shadow("s1", parent="l1"),
                         lite("l2", 0.4, timestamp=iso(recent(hours=20))),
                         shadow("s2", parent="l2", quality=0.6, timestamp=iso(recent(hours=3)))])
    project_refresh(project=project)
    evidence = savings_evidence(project=project, **window())
    assert [e.pairs for e in evidence.values()] == [1]
    response = ingest_client.post("/api/v1/scores", data=json.dumps({"scores": [{"event_id": "s1", "quality": 0.7}]}),
                                  content_type="application/json")
    assert response.status_code == 200
    assert [e.pairs for e in savings_evidence(project=project, **window()).values()] == [1]  # not before the refresh
    project_refresh(project=project)
    (evidence,) = savings_evidence(project=project, **window()).values()
    assert evidence.pairs == 2
    assert evidence.mean_diff == pytest.approx(((0.8 - 0.7) + (0.4 - 0.6)) / 2)
    # a late score on the Lite side, a day away from its shadow, rebuilds that pair too
    ingest_client.post("/api/v1/scores", data=json.dumps({"scores": [{"event_id": "l2", "quality": 0.9}]}),
                       content_type="application/json")
    project_refresh(project=project)
    (evidence,) = savings_evidence(project=project, **window()).values()
    assert evidence.mean_diff == pytest.approx(((0.8 - 0.7) + (0.9 - 0.6)) / 2)


def test_empty_denominators_are_null_with_a_reason(project, ingest_client):
    send(ingest_client, [lite("l1", 0.8), shadow("s1", parent="l1", quality=0.9)])
    project_refresh(project=project)
    (evidence,) = savings_evidence(project=project, **window()).values()
    assert evidence.pairs == 1 and evidence.ci_low is None and evidence.ci_high is None
    assert evidence.nulls["ci_low"] == "an interval needs at least 2 pairs"

"""Rules and budgets set up before a feature's first event (the deploy that starts the traffic)."""

import itertools
from decimal import Decimal

import pytest
from django.utils import timezone

from budgets.models import Alert, Rule
from budgets.services import rules_evaluate
from costwatch.metrics.services import rollups_refresh_dirty
from ingest.models import Feature

pytestmark = pytest.mark.django_db
_ids = itertools.count()


def _event(feature, cost, *, ts):
    return {"event_id": f"launch-{next(_ids)}", "timestamp": ts.isoformat(), "feature": feature,
            "model": "acme-unpriced-test", "input_tokens": 100, "output_tokens": 20, "cost_usd": cost}


def test_a_budget_created_before_its_features_first_event_fires_after_it(project, manage_client, key_client):
    response = manage_client.post("/api/v1/rules", {
        "kind": "spend_budget", "feature": "ticket-route",
        "params": {"period": "day", "amount_usd": "1.00", "thresholds": [100]}}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["feature"] == "ticket-route"
    rule = Rule.objects.get(pk=response.json()["id"])
    assert rule.feature_id is None and not Feature.objects.filter(project=project).exists()

    now = timezone.now()
    assert not [e for e in rules_evaluate(project=project, now=now) if e.rule.pk == rule.pk]

    costs = ["0.40", "0.35", "0.30"]  # 1.05 in all: over the $1.00 day budget
    events = [_event("ticket-route", cost, ts=now) for cost in costs]
    sent = key_client(project, "ingest").post("/api/v1/events", {"events": events}, format="json")
    assert sent.status_code == 200 and sent.json()["accepted"] == 3
    rollups_refresh_dirty(project=project)
    rules_evaluate(project=project, now=now)

    rule.refresh_from_db()
    assert rule.feature.name == "ticket-route" and rule.awaited_feature == ""
    alert = Alert.objects.get(rule=rule)
    expected = sum(Decimal(c) for c in costs)
    assert alert.level == 100 and alert.scope == {"feature": "ticket-route"}
    assert Decimal(alert.numbers["spent_usd"]) == expected


def test_a_feature_rule_named_before_launch_replaces_the_project_rule_once_bound(project, manage_client):
    created = manage_client.post("/api/v1/rules", {"kind": "pro_default", "feature": "search-rank",
                                                   "enabled": False}, format="json")
    assert created.status_code == 201, created.json()
    assert manage_client.get(f"/api/v1/rules/{created.json()['id']}").json()["feature"] == "search-rank"
    Feature.objects.create(project=project, name="search-rank")
    rules_evaluate(project=project, now=timezone.now())
    assert Rule.objects.get(pk=created.json()["id"]).feature.name == "search-rank"


def test_a_feature_name_that_no_event_could_carry_is_refused(project, manage_client):
    response = manage_client.post("/api/v1/rules", {"kind": "spend_budget", "feature": "ticket route",
                                                    "params": {"amount_usd": "5"}}, format="json")
    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("feature", "invalid")]
    assert not Rule.objects.filter(project=project).exists()

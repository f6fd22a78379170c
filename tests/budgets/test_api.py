"""Rules, channels, alerts and budget-status API: shapes, validation naming the field, scopes, audit."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from budgets.models import Alert, Channel, Rule
from budgets.services import rules_evaluate
from costwatch.projects.models import AuditLog

from .helpers import NOW, feature, hourly, only_rules, uncapped_day, uncapped_feature

pytestmark = pytest.mark.django_db


def _fields(response):
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


def test_a_budget_rule_is_created_with_defaults_filled_and_audited(project, manage_client):
    feature(project, "search-rank")
    response = manage_client.post("/api/v1/rules", {"kind": "spend_budget", "feature": "search-rank", "params": {
        "period": "day", "amount_usd": "50.00"}}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["feature"] == "search-rank" and body["environment"] == "production" and body["enabled"]
    assert body["params"] == {"period": "day", "amount_usd": "50.00", "thresholds": [50, 80, 100], "basis": "actual"}
    assert body["cooldown_hours"] == 24
    log = AuditLog.objects.get(target_type="rule", action="create")
    assert log.after["params"]["amount_usd"] == "50.00"
    assert log.actor_label == f"key:{manage_client.api_key.key_id}"


@pytest.mark.parametrize(("body", "expected"), [
    ({"kind": "spend_budget", "params": {}}, [("params.amount_usd", "required")]),
    ({"kind": "spend_budget", "params": {"amount_usd": "-1"}}, [("params.amount_usd", "invalid")]),
    ({"kind": "spend_budget", "params": {"amount_usd": "5", "period": "year"}}, [("params.period", "invalid")]),
    ({"kind": "pro_default", "params": {"pro_share": 2}}, [("params.pro_share", "invalid")]),
    ({"kind": "pro_default", "params": {"typo": 1}}, [("params.typo", "unknown")]),
    ({"kind": "pro_default", "model": "gpt-5"}, [("model", "invalid")]),
    ({"kind": "unpriced_traffic", "feature": "f1"}, [("feature", "invalid")]),
    ({"kind": "share_drift", "feature": "no spaces"}, [("feature", "invalid")]),
    ({"kind": "spend_budget", "dimension": {"customer": "acme"}, "params": {"amount_usd": "1"}},
     [("dimension", "unknown_dimension")]),
    ({"kind": "nonsense"}, [("kind", "invalid_choice")]),
    ({"kind": "pro_default", "cooldown_hours": 0}, [("cooldown_hours", "min_value")]),
])
def test_bad_rules_are_rejected_naming_the_field(project, manage_client, body, expected):
    feature(project, "f1")
    response = manage_client.post("/api/v1/rules", body, format="json")
    assert response.status_code == 400
    assert _fields(response) == expected
    assert not Rule.objects.filter(project=project).exists()


def test_a_dimension_budget_needs_a_declared_dimension(project, manage_client):
    project.dimensions = ["customer"]
    project.save()
    response = manage_client.post("/api/v1/rules", {"kind": "spend_budget", "dimension": {"customer": "acme"},
                                                    "params": {"amount_usd": "10"}}, format="json")
    assert response.status_code == 201 and response.json()["dimension"] == {"customer": "acme"}


def test_patch_merges_params_and_delete_closes_alerts_and_is_audited(project, manage_client):
    feat = feature(project)
    uncapped_day(project, feat)
    [rule] = only_rules(project, "unbounded_output")
    rules_evaluate(project=project, now=NOW)
    response = manage_client.patch(f"/api/v1/rules/{rule.pk}", {"params": {"uncapped_share": 0.2},
                                                                 "environment": None}, format="json")
    assert response.status_code == 200
    assert response.json()["params"]["uncapped_share"] == 0.2 and response.json()["params"]["min_calls"] == 100
    assert response.json()["environment"] is None
    assert manage_client.patch(f"/api/v1/rules/{rule.pk}", {"kind": "pro_default"}, format="json").status_code == 400
    assert manage_client.delete(f"/api/v1/rules/{rule.pk}").status_code == 204
    alert = Alert.objects.get()
    assert alert.state == "resolved" and alert.rule is None
    actions = list(AuditLog.objects.filter(target_type="rule").values_list("action", flat=True))
    assert sorted(actions) == ["delete", "update"]
    assert AuditLog.objects.get(action="update", target_type="rule").before["params"]["uncapped_share"] == 0.05


def test_rules_list_is_cursor_paginated(project, manage_client):
    for i in range(3):
        Rule.objects.create(project=project, kind="pro_default", params={}, cooldown_hours=i + 1)
    first = manage_client.get("/api/v1/rules?limit=2").json()
    assert len(first["results"]) == 2 and first["next"]
    second = manage_client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert sorted(ids) == sorted(Rule.objects.values_list("id", flat=True))


def test_rules_need_the_manage_scope_and_other_projects_are_404(project, read_client, key_client):
    assert read_client.get("/api/v1/rules").status_code == 403
    rule = Rule.objects.create(project=project, kind="pro_default", params={})
    from tests.factories import make_project

    other = key_client(make_project("Other"), "manage")
    assert other.get(f"/api/v1/rules/{rule.pk}").status_code == 404
    assert other.delete(f"/api/v1/rules/{rule.pk}").status_code == 404
    assert Rule.objects.filter(pk=rule.pk).exists()


def test_channel_target_and_secret_are_write_only(project, manage_client):
    response = manage_client.post("/api/v1/channels", {"kind": "webhook", "name": "pager",
                                                       "target": "https://example.com/hook", "secret": "s3cret"},
                                  format="json")
    assert response.status_code == 201
    body = response.json()
    assert "target" not in body and "secret" not in body and body["has_secret"] is True
    listed = manage_client.get("/api/v1/channels").json()["results"]
    assert listed[0]["name"] == "pager" and "target" not in listed[0]
    channel = Channel.objects.get()
    assert channel.target == "https://example.com/hook" and channel.secret == "s3cret"
    log = AuditLog.objects.get(target_type="channel")
    assert "s3cret" not in str(log.after) and "example.com" not in str(log.after)


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "email", "name": "x", "target": "not-an-address"}, "target"),
    ({"kind": "slack", "name": "x", "target": "ftp://hooks"}, "target"),
    ({"kind": "carrier-pigeon", "name": "x", "target": "x"}, "kind"),
    ({"kind": "email", "name": "x", "target": "a@example.com", "rules": [999999]}, "rules"),
    ({"kind": "email", "target": "a@example.com"}, "name"),
])
def test_bad_channels_are_rejected_naming_the_field(manage_client, body, field):
    response = manage_client.post("/api/v1/channels", body, format="json")
    assert response.status_code == 400 and _fields(response)[0][0] == field


def test_channel_patch_and_delete(project, manage_client):
    channel = Channel.objects.create(project=project, kind="email", name="ops", target="a@example.com")
    response = manage_client.patch(f"/api/v1/channels/{channel.pk}", {"target": "b@example.com", "enabled": False},
                                   format="json")
    assert response.status_code == 200 and response.json()["enabled"] is False
    channel.refresh_from_db()
    assert channel.target == "b@example.com"
    assert manage_client.delete(f"/api/v1/channels/{channel.pk}").status_code == 204
    assert not Channel.objects.exists()
    assert sorted(AuditLog.objects.filter(target_type="channel").values_list("action", flat=True)) == [
        "delete", "update"]


def test_alerts_list_by_state_and_ack(project, read_client):
    uncapped_feature(project)
    rules_evaluate(project=project, now=NOW)
    alert = Alert.objects.get()
    body = read_client.get("/api/v1/alerts?state=open").json()
    [row] = body["results"]
    assert set(row) == {"id", "kind", "rule_id", "feature", "scope", "level", "state", "opened_at",
                        "acknowledged_at", "resolved_at", "numbers", "message", "url"}
    assert row["id"] == alert.pk and row["feature"] == "ticket-triage" and row["numbers"]["calls_24h"] == 250
    assert row["url"].endswith(f"/p/{project.slug}/features/ticket-triage/")
    assert read_client.get("/api/v1/alerts?state=acknowledged").json()["results"] == []
    bad = read_client.get("/api/v1/alerts?state=closed")
    assert bad.status_code == 400 and _fields(bad) == [("state", "invalid_choice")]
    acked = read_client.post(f"/api/v1/alerts/{alert.pk}/ack").json()
    assert acked["state"] == "acknowledged" and acked["acknowledged_at"]
    assert [a["id"] for a in read_client.get("/api/v1/alerts?state=acknowledged").json()["results"]] == [alert.pk]


def test_budget_status_shape_and_over_budget(project, key_client):
    feat = feature(project, "search-rank")
    other = feature(project, "chat")
    now = timezone.now()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    on_feature = Rule.objects.create(project=project, kind="spend_budget", feature=feat, params={
        "period": "month", "amount_usd": "10.00", "thresholds": [50, 80, 100], "basis": "forecast"})
    on_project = Rule.objects.create(project=project, kind="spend_budget", params={
        "period": "month", "amount_usd": "100", "thresholds": [50, 100], "basis": "actual"})
    on_pro = Rule.objects.create(project=project, kind="spend_budget", tier="pro", params={
        "period": "month", "amount_usd": "1000", "thresholds": [100], "basis": "actual"})
    Rule.objects.create(project=project, kind="spend_budget", feature=other, params={
        "period": "month", "amount_usd": "1", "thresholds": [100], "basis": "actual"})
    hourly(project, feat, month_start, cost="10", model="gemini-2.5-flash", tier="lite")
    hourly(project, other, month_start, cost="45", model="gemini-2.5-pro", tier="pro")
    client = key_client(project, "ingest")
    body = client.get("/api/v1/budget-status?feature=search-rank").json()
    assert body["feature"] == "search-rank" and body["over_budget"] is True
    budgets = {b["rule_id"]: b for b in body["budgets"]}
    assert set(budgets) == {on_feature.pk, on_project.pk}  # the Pro budget: search-rank never used Pro
    assert budgets[on_feature.pk]["spent_usd"] == "10.000000" and budgets[on_feature.pk]["amount_usd"] == "10.000000"
    assert budgets[on_project.pk] == {"rule_id": on_project.pk, "period": "month", "amount_usd": "100.000000",
                                      "spent_usd": "55.000000", "forecast_usd": budgets[on_project.pk]["forecast_usd"],
                                      "level": 50}
    chat = client.get("/api/v1/budget-status?feature=chat").json()
    assert {b["rule_id"] for b in chat["budgets"]} >= {on_pro.pk, on_project.pk}


def test_budget_status_is_cached_and_needs_feature(project, key_client, settings):
    feat = feature(project, "search-rank")
    Rule.objects.create(project=project, kind="spend_budget", feature=feat, params={
        "period": "day", "amount_usd": "1", "thresholds": [100], "basis": "actual"})
    client = key_client(project, "read")
    assert client.get("/api/v1/budget-status?feature=search-rank").json()["over_budget"] is False
    hourly(project, feat, timezone.now().replace(minute=0, second=0, microsecond=0), cost="2")
    assert client.get("/api/v1/budget-status?feature=search-rank").json()["over_budget"] is False  # cached
    from django.core.cache import cache

    cache.clear()
    assert client.get("/api/v1/budget-status?feature=search-rank").json()["over_budget"] is True
    missing = client.get("/api/v1/budget-status")
    assert missing.status_code == 400 and _fields(missing) == [("feature", "required")]
    assert client.get("/api/v1/budget-status?feature=search-rank").json()["dimension"] is None
    refused = key_client(project, "manage").get("/api/v1/budget-status?feature=x")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["message"] == "this API key lacks the 'ingest' or 'read' scope"
    assert key_client(project, "read").get("/api/v1/budget-status?feature=x").status_code == 200


def test_the_openapi_schema_describes_the_budget_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    for path in ("/api/v1/rules", "/api/v1/rules/{rule_id}", "/api/v1/channels", "/api/v1/alerts",
                 "/api/v1/alerts/{alert_id}/ack", "/api/v1/budget-status"):
        assert path in schema["paths"], path
    status = schema["components"]["schemas"]["BudgetStatus"]["properties"]
    assert set(status) == {"feature", "dimension", "over_budget", "budgets"}


def test_session_users_act_with_project_param_and_viewers_cannot_write(client, user, project):
    from costwatch.projects.services import membership_set
    from tests.factories import make_user

    viewer = make_user("victor")
    membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    url = f"/api/v1/rules?project={project.slug}"
    assert client.get(url).status_code == 200
    response = client.post(url, {"kind": "pro_default"}, content_type="application/json")
    assert response.status_code == 403
    client.force_login(user)
    assert client.post(url, {"kind": "pro_default"}, content_type="application/json").status_code == 201
    assert Rule.objects.get().kind == "pro_default"
    assert AuditLog.objects.get(target_type="rule").actor == user


def test_spend_is_money_not_float(project):
    from budgets.services import budget_status

    feat = feature(project, "f")
    Rule.objects.create(project=project, kind="spend_budget", params={"period": "day", "amount_usd": "0.3",
                                                                       "thresholds": [100], "basis": "actual"})
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    hourly(project, feat, hour, cost="0.1")
    hourly(project, feat, hour, cost="0.2", model="other")
    status = budget_status(project=project, feature_name="f", now=timezone.now())
    assert status["budgets"][0]["spent_usd"] == "0.300000" and status["over_budget"] is True
    assert Decimal(status["budgets"][0]["spent_usd"]) == Decimal("0.1") + Decimal("0.2")


def test_acking_a_resolved_alert_is_a_conflict(project, read_client):
    uncapped_feature(project)
    rules_evaluate(project=project, now=NOW)
    alert = Alert.objects.get()
    Alert.objects.filter(pk=alert.pk).update(state="resolved", resolved_at=NOW)
    response = read_client.post(f"/api/v1/alerts/{alert.pk}/ack")
    assert response.status_code == 409 and _fields(response) == [(None, "resolved")]
    assert Alert.objects.get().acknowledged_at is None

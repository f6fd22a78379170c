"""Roles hold on every API path: a viewer's session writes nothing (events, OTLP spans,
acknowledgements, feature settings, prices, rules, channels); the same call from an admin's
session goes through, so each case proves the path itself works for a session."""

import json
import time

import pytest
from rest_framework.test import APIClient

from budgets.models import Alert, Channel, Rule
from budgets.services import rules_evaluate
from ingest.models import Event, Feature, Price
from tests.budgets.helpers import NOW, feature, only_rules, uncapped_day
from tests.factories import make_user
from tests.ingest.helpers import event

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(project):
    feat = feature(project, "ticket-triage")
    uncapped_day(project, feat)
    only_rules(project, "unbounded_output")
    rules_evaluate(project=project, now=NOW)
    channel = Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    return {"rule": Rule.objects.get(), "channel": channel, "alert": Alert.objects.get(), "feature": feat}


def _session(project, user):
    client = APIClient()
    client.force_login(user)
    client.slug = project.slug
    return client


@pytest.fixture
def viewer(project):
    from costwatch.projects.services import membership_set

    victor = make_user("victor")
    membership_set(project=project, user=victor, role="viewer")
    return _session(project, victor)


@pytest.fixture
def admin(project, user):
    return _session(project, user)


def _snapshot():
    return {"events": Event.objects.count(), "prices": Price.objects.count(),
            "rules": list(Rule.objects.values_list("id", "enabled", "cooldown_hours")),
            "channels": list(Channel.objects.values_list("id", "name", "enabled", "target")),
            "alerts": list(Alert.objects.values_list("id", "state")),
            "features": list(Feature.objects.values_list("name", "muted"))}


def otlp_json_body():
    end = time.time_ns() - 60 * 10**9
    attributes = [{"key": "gen_ai.request.model", "value": {"stringValue": "test-lite-1"}},
                  {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
                  {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}}]
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "chat test-lite-1",
            "startTimeUnixNano": str(end - 10**9), "endTimeUnixNano": str(end), "attributes": attributes}
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "ticket-triage"}}]}, "scopeSpans": [{"spans": [span]}]}]}


WRITES = {
    "post events": lambda w: ("post", "/api/v1/events", {"events": [event("viewer-1")]}),
    "ack alert": lambda w: ("post", f"/api/v1/alerts/{w['alert'].pk}/ack", None),
    "patch feature": lambda w: ("patch", "/api/v1/features/ticket-triage", {"muted": True}),
    "post price": lambda w: ("post", "/api/v1/prices", {"model": "viewer-model", "tier": "lite",
                                                         "input_per_mtok": "1", "output_per_mtok": "2"}),
    "post rule": lambda w: ("post", "/api/v1/rules", {"kind": "spend_spike"}),
    "patch rule": lambda w: ("patch", f"/api/v1/rules/{w['rule'].pk}", {"enabled": False}),
    "delete rule": lambda w: ("delete", f"/api/v1/rules/{w['rule'].pk}", None),
    "post channel": lambda w: ("post", "/api/v1/channels", {"kind": "email", "name": "x", "target": "x@example.com"}),
    "patch channel": lambda w: ("patch", f"/api/v1/channels/{w['channel'].pk}", {"name": "renamed"}),
    "delete channel": lambda w: ("delete", f"/api/v1/channels/{w['channel'].pk}", None),
}


def _call(client, case, world):
    method, path, body = WRITES[case](world)
    return getattr(client, method)(f"{path}?project={client.slug}", body, format="json")


@pytest.mark.parametrize("case", sorted(WRITES))
def test_a_viewer_session_cannot_write_through_the_api(world, viewer, case):
    before = _snapshot()
    response = _call(viewer, case, world)
    assert response.status_code == 403, response.content
    [error] = response.json()["errors"]
    assert error["code"] == "permission_denied" and "admin" in error["message"]
    assert _snapshot() == before


@pytest.mark.parametrize("case", sorted(WRITES))
def test_an_admin_session_writes_through_the_same_paths(world, admin, case):
    before = _snapshot()
    response = _call(admin, case, world)
    assert response.status_code < 300, response.content
    assert _snapshot() != before


def test_a_viewer_session_still_reads(world, viewer):
    for path in ("/api/v1/features", "/api/v1/alerts", "/api/v1/rules", "/api/v1/channels", "/api/v1/prices"):
        response = viewer.get(f"{path}?project={viewer.slug}")
        assert response.status_code == 200, (path, response.content)
    assert json.loads(viewer.get(f"/api/v1/alerts?project={viewer.slug}").content)["results"]


def test_otlp_takes_keys_only_so_a_viewer_session_stores_no_span(world, viewer):
    before = _snapshot()
    response = viewer.post(f"/v1/traces?project={viewer.slug}", otlp_json_body(), format="json")
    assert response.status_code == 401 and _snapshot() == before

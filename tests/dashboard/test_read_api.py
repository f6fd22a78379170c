"""Read API v1 end to end: events through the ingest API, rollups refreshed, numbers checked
against Python arithmetic on the fixture events and the price rows."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from costwatch.metrics import services
from costwatch.projects.models import AuditLog
from ingest.models import Feature, Price
from tests.factories import make_project, make_user

LITE = {"input": Decimal("0.10"), "cached": Decimal("0.025"), "output": Decimal("0.40")}
PRO = {"input": Decimal("1.25"), "cached": Decimal("0.125"), "output": Decimal("10.00")}
MTOK = Decimal(1_000_000)


def cost(prices, event):
    cached = event.get("cached_input_tokens", 0)
    uncached = event["input_tokens"] - cached
    return (uncached * prices["input"] + cached * prices["cached"] + event["output_tokens"] * prices["output"]) / MTOK


def money6(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('1e-12')):f}"
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.rstrip('0').ljust(6, '0')}"


@pytest.fixture
def priced_models(db):
    start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    Price.objects.create(model="testlite-1", tier="lite", input_per_mtok=LITE["input"],
                         cached_input_per_mtok=LITE["cached"], output_per_mtok=LITE["output"], effective_from=start)
    Price.objects.create(model="testpro-1", tier="pro", input_per_mtok=PRO["input"],
                         cached_input_per_mtok=PRO["cached"], output_per_mtok=PRO["output"], effective_from=start)


def events_at(base):
    """Hand-built calls of one feature, two days ago, with every case the metric definitions name (docs/rollups.md#metric-definitions)."""
    def ev(i, **fields):
        event = {"event_id": f"e{i}", "timestamp": (base + dt.timedelta(minutes=i)).isoformat(),
                 "feature": "ticket-triage", "model": "testlite-1", "input_tokens": 1000 + i,
                 "output_tokens": 100 + 10 * i, "max_output_tokens": 512, "latency_ms": 100 * (i + 1),
                 "ttft_ms": 20 * (i + 1), "finish_reason": "stop", "attributes": {"customer": "acme"}}
        event.update(fields)
        return event
    return [
        ev(0),
        ev(1, cached_input_tokens=400),
        ev(2, model="testpro-1", role="escalation", max_output_tokens=8192),  # cap at huge_cap: uncapped
        ev(3, model="testpro-1", max_output_tokens=None, finish_reason="length"),  # no cap: uncapped
        ev(4, model="testpro-1", role="shadow", max_output_tokens=8191, attributes={"customer": "globex"}),
        ev(5, role="triage"),
        ev(6, model="mystery-model", status="error"),  # unpriced, unknown tier: in pro_share's denominator
        ev(7, finish_reason="length", attributes={}),
    ]


@pytest.fixture
def ingested(project, ingest_client, priced_models):
    project.dimensions = ["customer"]
    project.save()
    base = (timezone.now() - dt.timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    events = events_at(base)
    response = ingest_client.post("/api/v1/events", {"events": events}, format="json")
    assert response.status_code == 200, response.content
    services.rollups_refresh_dirty(project=project)
    return events


def price_of(event):
    return {"testlite-1": LITE, "testpro-1": PRO}.get(event["model"])


@pytest.mark.django_db
def test_features_endpoint_numbers_equal_python_arithmetic(read_client, ingested):
    response = read_client.get("/api/v1/features")
    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    priced = [e for e in ingested if price_of(e)]
    total = sum(cost(price_of(e), e) for e in priced)
    routed = [e for e in ingested if e.get("role", "primary") in ("primary", "escalation")]
    cap_known = ingested  # every event sent a cap field or null (= no cap) through the REST API
    assert row["feature"] == "ticket-triage"
    assert row["calls"] == 8 and row["requests"] == sum(1 for e in ingested if e.get("role", "primary") == "primary")
    assert row["cost_usd"] == money6(total)
    assert row["cost_per_call_usd"] == money6(total / len(priced))
    assert row["pro_share"] == pytest.approx(sum(1 for e in routed if e["model"] == "testpro-1") / len(routed))
    assert row["uncapped_share"] == pytest.approx(
        sum(1 for e in cap_known if e["max_output_tokens"] is None or e["max_output_tokens"] >= 8192) / len(cap_known))
    assert row["cap_hit_share"] == pytest.approx(2 / 8)
    assert row["escalation_rate"] == pytest.approx(1 / row["requests"])
    assert row["output_tokens_per_call"] == pytest.approx(sum(e["output_tokens"] for e in ingested) / 8)
    assert row["shadow_cost_usd"] == money6(cost(PRO, ingested[4]))
    assert row["triage_cost_usd"] == money6(cost(LITE, ingested[5]))
    assert (row["unpriced_calls"], row["error_calls"]) == (1, 1)
    exact_p95 = sorted(e["latency_ms"] for e in ingested)[7]  # nearest rank of 8 values
    assert abs(row["latency_p95_ms"] - exact_p95) <= 0.125 * exact_p95
    assert len(row["cost_usd"].split(".")[1]) >= 6


@pytest.mark.django_db
def test_features_filtered_by_a_dimension_value(read_client, ingested):
    response = read_client.get("/api/v1/features", {"attr.customer": "globex"})
    [row] = response.json()["results"]
    assert (row["calls"], row["cost_usd"]) == (1, money6(cost(PRO, ingested[4])))


@pytest.mark.django_db
def test_timeseries_models_and_breakdown(read_client, ingested, project):
    day = dt.datetime.fromisoformat(ingested[0]["timestamp"]).date()
    query = {"metric": "cost", "granularity": "day", "start": day.isoformat(),
             "end": (day + dt.timedelta(days=2)).isoformat(), "feature": "ticket-triage", "group_by": "tier"}
    body = read_client.get("/api/v1/timeseries", query).json()
    assert (body["start"], body["end"]) == (f"{day}T00:00:00Z", f"{day + dt.timedelta(days=2)}T00:00:00Z")
    points = {(p["t"], p["group"]): p["value"] for p in body["results"]}
    lite_cost = sum(cost(LITE, e) for e in ingested if e["model"] == "testlite-1")
    assert points[(f"{day}T00:00:00Z", "lite")] == money6(lite_cost)
    assert points[(f"{day + dt.timedelta(days=1)}T00:00:00Z", "lite")] == "0.000000"
    assert points[(f"{day}T00:00:00Z", "unknown")] is None  # calls, none priced

    models = {m["model"]: m for m in read_client.get("/api/v1/models").json()["results"]}
    assert models["testpro-1"]["tier"] == "pro" and models["testpro-1"]["price_source"] == "catalogue"
    assert models["testpro-1"]["cost_usd"] == money6(sum(cost(PRO, e) for e in ingested if e["model"] == "testpro-1"))
    assert models["mystery-model"] == {**models["mystery-model"], "tier": "unknown", "price_source": "none",
                                       "cost_usd": None, "unpriced_calls": 1}

    breakdown = read_client.get("/api/v1/breakdown", {"dimension": "customer"}).json()
    values = {b["value"]: b for b in breakdown["results"]}
    assert set(values) == {"acme", "globex"}
    assert values["acme"]["calls"] == 6
    assert values["globex"]["pro_share"] is None  # a shadow call only: no routed calls


@pytest.mark.django_db
def test_rollups_follow_a_price_change_after_recompute(read_client, manage_client, ingested, project):
    recompute = pytest.importorskip("ingest.recompute")
    response = manage_client.post("/api/v1/prices", {
        "model": "mystery-model", "tier": "lite", "input_per_mtok": "2.000000", "output_per_mtok": "4.000000",
        "effective_from": "2000-01-01T00:00:00Z"}, format="json")
    assert response.status_code in (200, 201, 202), response.content
    recompute.costs_recompute(project=project)  # what the queued task runs, synchronously here
    services.rollups_refresh_dirty(project=project)
    [row] = read_client.get("/api/v1/features").json()["results"]
    mystery = {"input": Decimal(2), "cached": Decimal(2), "output": Decimal(4)}
    total = sum(cost(price_of(e) or mystery, e) for e in ingested)
    assert row["cost_usd"] == money6(total)
    assert row["unpriced_calls"] == 0


@pytest.mark.django_db
def test_session_access_with_project_param_and_404_for_other_projects(client, user, project, ingested):
    client.force_login(user)
    response = client.get("/api/v1/features", {"project": project.slug})
    assert response.status_code == 200 and response.json()["results"][0]["feature"] == "ticket-triage"
    other = make_project("Other Team", owner=make_user("bob"))
    response = client.get("/api/v1/features", {"project": other.slug})
    assert response.status_code == 404 and response.json()["errors"][0]["field"] is None
    response = client.get("/api/v1/features")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "project"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/features", "/api/v1/timeseries?metric=calls", "/api/v1/models",
                                 "/api/v1/breakdown?dimension=customer"])
def test_read_scope_is_required(key_client, project, url):
    response = key_client(project, "ingest").get(url)
    assert response.status_code == 403
    assert "read" in response.json()["errors"][0]["message"]
    assert APIClient().get(url).status_code in (401, 403)


@pytest.mark.django_db
def test_patch_feature_settings_needs_manage_and_is_audited(key_client, read_client, manage_client, project):
    Feature.objects.create(project=project, name="search-rank")
    url = "/api/v1/features/search-rank"
    assert read_client.patch(url, {"muted": True}, format="json").status_code == 403
    response = manage_client.patch(url, {"expected_pro_share": 0.25, "muted": True}, format="json")
    assert response.json() == {"feature": "search-rank", "expected_pro_share": 0.25, "muted": True}
    feature = Feature.objects.get(project=project, name="search-rank")
    assert (feature.expected_pro_share, feature.muted) == (0.25, True)
    entry = AuditLog.objects.get(target_type="feature", target_id="search-rank")
    assert entry.before == {"expected_pro_share": None, "muted": False}
    assert entry.after == {"expected_pro_share": 0.25, "muted": True}
    assert entry.actor_label == f"key:{manage_client.api_key.key_id}"
    response = manage_client.patch(url, {"expected_pro_share": None}, format="json")
    assert response.json()["expected_pro_share"] is None
    assert manage_client.patch("/api/v1/features/nope", {"muted": True}, format="json").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("body, field, code", [
    ({"expected_pro_share": 1.5}, "expected_pro_share", "max_value"),
    ({"expected_pro_share": -0.1}, "expected_pro_share", "min_value"),
    ({"expected_pro_share": "lots"}, "expected_pro_share", "invalid"),
    ({"muted": "yes"}, "muted", "invalid"),
    ({"colour": "red"}, "colour", "invalid"),
    ({}, None, "invalid"),
])
def test_patch_feature_settings_rejects_bad_values(manage_client, project, body, field, code):
    Feature.objects.create(project=project, name="search-rank")
    response = manage_client.patch("/api/v1/features/search-rank", body, format="json")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == (field, code)
    assert not AuditLog.objects.filter(target_type="feature").exists()


@pytest.mark.django_db
def test_patch_by_session_needs_a_project_admin(client, user, project):
    viewer = make_user("victor")
    from costwatch.projects.services import membership_set

    membership_set(project=project, user=viewer, role="viewer")
    Feature.objects.create(project=project, name="search-rank")
    client.force_login(viewer)
    url = f"/api/v1/features/search-rank?project={project.slug}"
    response = client.patch(url, {"muted": True}, content_type="application/json")
    assert response.status_code == 403
    client.force_login(user)
    response = client.patch(url, {"muted": True}, content_type="application/json")
    assert response.status_code == 200 and response.json()["muted"] is True
    assert AuditLog.objects.get(target_type="feature").actor == user


@pytest.mark.django_db
def test_a_model_whose_price_starts_after_its_calls_is_not_called_catalogue_priced(read_client, ingested):
    Price.objects.create(model="mystery-model", tier="lite", input_per_mtok=LITE["input"],
                         output_per_mtok=LITE["output"], effective_from=timezone.now())
    models = {m["model"]: m for m in read_client.get("/api/v1/models").json()["results"]}
    assert (models["mystery-model"]["price_source"], models["mystery-model"]["cost_usd"]) == ("none", None)
    assert models["testpro-1"]["price_source"] == "catalogue"

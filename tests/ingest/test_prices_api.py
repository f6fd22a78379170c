"""GET/POST /api/v1/prices: overrides and the catalogue, the glob tie rule, the queued recompute."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from costwatch.projects.models import AuditLog
from ingest.models import Event, Price, PriceRecompute
from ingest.recompute import recompute_run
from ingest.services import event_batch_ingest
from tests.ingest.helpers import event, iso, mtok, price, recent

pytestmark = pytest.mark.django_db
URL = "/api/v1/prices"


def post_price(client, **body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def test_it_adds_an_override_and_answers_with_the_price_and_its_recompute(project, manage_client):
    event_batch_ingest(project=project, events=[event("a", model="private-7b")])
    response = post_price(manage_client, model="private-7b", tier="lite", input_per_mtok="0.20",
                          output_per_mtok="0.80", cached_input_per_mtok="0.05",
                          effective_from="2026-01-01T00:00:00Z")
    assert response.status_code == 201, response.json()
    body = response.json()
    stored = Price.objects.get(pk=body["price"]["id"])
    assert stored.project_id == project.id and stored.input_per_mtok == mtok(1_000_000, "0.20")
    assert body["price"] | {"id": 0} == {
        "id": 0, "scope": "override", "model": "private-7b", "provider": None, "service_tier": "standard",
        "tier": "lite", "input_per_mtok": "0.200000", "cached_input_per_mtok": "0.050000",
        "cache_write_input_per_mtok": None, "output_per_mtok": "0.800000", "reasoning_output_per_mtok": None,
        "long_context_threshold": None, "long_context_input_per_mtok": None,
        "long_context_cached_input_per_mtok": None, "long_context_output_per_mtok": None,
        "effective_from": "2026-01-01T00:00:00Z"}
    recompute = PriceRecompute.objects.get(pk=body["recompute"]["id"])
    assert body["recompute"] == {"id": recompute.pk, "state": "queued", "models": ["private-7b"],
                                 "since": "2026-01-01T00:00:00Z"}
    assert recompute.project_id == project.id
    audit = AuditLog.objects.get(action="create", target_type="price", target_id=str(stored.pk))
    assert audit.after["model"] == "private-7b" and audit.project_id == project.id


def test_an_unpriced_event_is_priced_retroactively_after_a_price_is_posted(project, manage_client):
    event_batch_ingest(project=project, events=[event("a", model="new-model", input_tokens=5000, output_tokens=100),
                                                event("b", model="other-model")])
    assert Event.objects.get(event_id="a").cost_usd is None
    body = post_price(manage_client, model="new-model", tier="pro", input_per_mtok="2", output_per_mtok="8",
                      effective_from="2000-01-01T00:00:00Z").json()
    recompute_run(recompute_id=body["recompute"]["id"])  # what the Celery task runs
    repriced = Event.objects.get(event_id="a")
    assert (repriced.cost_usd, repriced.tier, repriced.cost_source, repriced.price_id) == (
        mtok(5000, "2") + mtok(100, "8"), "pro", "override", body["price"]["id"])
    assert Event.objects.get(event_id="b").cost_usd is None
    assert PriceRecompute.objects.get(pk=body["recompute"]["id"]).events_changed == 1
    assert PriceRecompute.objects.get(pk=body["recompute"]["id"]).state == "done"


def test_a_price_for_a_model_never_seen_queues_no_recompute(manage_client):
    body = post_price(manage_client, model="unseen-model", input_per_mtok="1", output_per_mtok="1").json()
    assert body["recompute"] is None


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"input_per_mtok": "1", "output_per_mtok": "1"}, "model", "required"),
    ({"model": "m", "input_per_mtok": "-1", "output_per_mtok": "1"}, "input_per_mtok", "min_value"),
    ({"model": "m", "input_per_mtok": "0.0000001", "output_per_mtok": "1"}, "input_per_mtok", "max_decimal_places"),
    ({"model": "m", "input_per_mtok": "1"}, "output_per_mtok", "invalid"),
    ({"model": "m"}, "input_per_mtok", "invalid"),
    ({"model": "m", "input_per_mtok": "1", "output_per_mtok": "1", "service_tier": "economy"}, "service_tier",
     "invalid_choice"),
    ({"model": "m", "input_per_mtok": "1", "output_per_mtok": "1", "long_context_threshold": 1000},
     "long_context_input_per_mtok", "invalid"),
    ({"model": "m", "input_per_mtok": "1", "output_per_mtok": "1", "long_context_input_per_mtok": "2"},
     "long_context_threshold", "invalid"),
])
def test_a_bad_price_is_a_400_naming_the_field(manage_client, body, field, code):
    response = post_price(manage_client, **body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [(field, code)], errors
    assert not Price.objects.filter(model="m").exists()


def test_a_tier_only_override_needs_no_prices(manage_client, project):
    response = post_price(manage_client, model="gpt-oss-20b", tier="lite")
    assert response.status_code == 201
    assert Price.objects.get(project=project, model="gpt-oss-20b").input_per_mtok is None


def test_a_glob_tying_with_another_on_a_known_model_is_rejected_naming_both(project, manage_client):
    event_batch_ingest(project=project, events=[event("a", model="acme-pro-lite-2")])
    assert post_price(manage_client, model="acme-*-lite*", input_per_mtok="1", output_per_mtok="1").status_code == 201
    # "acme-pro-l*" has the same 10 literal characters and also matches acme-pro-lite-2.
    response = post_price(manage_client, model="acme-pro-l*", input_per_mtok="2", output_per_mtok="2")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == ("model", "glob_tie")
    assert "'acme-pro-l*'" in error["message"] and "'acme-*-lite*'" in error["message"]
    assert "acme-pro-lite-2" in error["message"]
    assert not Price.objects.filter(model="acme-pro-l*").exists()
    # A longer glob is unambiguous, and so is an equally long one that matches no shared model.
    assert post_price(manage_client, model="acme-pro-li*", input_per_mtok="2", output_per_mtok="2").status_code == 201
    assert post_price(manage_client, model="acme-xyz-q*", input_per_mtok="2", output_per_mtok="2").status_code == 201
    assert post_price(manage_client, model="acme-pro-*", input_per_mtok="2", output_per_mtok="2").status_code == 201


def test_the_same_period_start_twice_is_rejected(manage_client):
    body = {"model": "m2", "input_per_mtok": "1", "output_per_mtok": "1", "effective_from": "2026-01-01T00:00:00Z"}
    assert post_price(manage_client, **body).status_code == 201
    again = post_price(manage_client, **body)
    assert again.status_code == 400
    assert again.json()["errors"][0]["field"] == "effective_from"


def test_posting_needs_the_manage_scope(project, key_client):
    response = post_price(key_client(project, "read"), model="m", input_per_mtok="1", output_per_mtok="1")
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == "this API key lacks the 'manage' scope"
    assert not Price.objects.filter(model="m").exists()


def test_the_list_shows_prices_in_force_with_overrides_marked(project, read_client):
    from tests.factories import make_project

    Price.objects.all().delete()
    old = price("listed", input_per_mtok="1", output_per_mtok="1")
    current = price("listed", effective_from=datetime(2020, 1, 1, tzinfo=UTC), input_per_mtok="2", output_per_mtok="2")
    future = price("listed", effective_from=datetime.now(UTC) + timedelta(days=30), input_per_mtok="3",
                   output_per_mtok="3")
    override = price("listed", project=project, input_per_mtok="0.5", output_per_mtok="0.5")
    price("listed", project=make_project("Other Co"), input_per_mtok="9", output_per_mtok="9")
    response = read_client.get(URL)
    assert response.status_code == 200
    rows = {r["id"]: r["scope"] for r in response.json()["results"]}
    assert rows == {current.id: "global", future.id: "global", override.id: "override"}
    history = read_client.get(URL + "?history=1").json()["results"]
    assert {r["id"] for r in history} == {old.id, current.id, future.id, override.id}


def test_the_list_needs_a_read_or_manage_key(project, ingest_client):
    response = ingest_client.get(URL)
    assert response.status_code == 403


def test_an_override_posted_later_repriced_client_priced_events(project, manage_client):
    ts = recent(hours=2)
    event_batch_ingest(project=project, events=[event("c", model="byo-model", cost_usd="0.5", timestamp=iso(ts))])
    assert Event.objects.get(event_id="c").cost_source == "client"
    body = post_price(manage_client, model="byo-model", input_per_mtok="1", output_per_mtok="1",
                      effective_from=iso(ts)).json()
    recompute_run(recompute_id=body["recompute"]["id"])
    stored = Event.objects.get(event_id="c")
    assert (stored.cost_usd, stored.cost_source, stored.client_cost_usd) == (mtok(1200, "1"), "override",
                                                                             mtok(1_000_000, "0.5"))


def test_a_price_for_a_model_new_to_the_overrides_starts_in_2000_and_prices_the_stored_calls(project, manage_client):
    event_batch_ingest(project=project, events=[
        event("old", model="my-finetune-v1", timestamp=iso(datetime.now(UTC) - timedelta(days=30)),
              input_tokens=4000, output_tokens=300),
        event("new", model="my-finetune-v1", input_tokens=1000, output_tokens=50)])
    body = post_price(manage_client, model="my-finetune-v1", input_per_mtok="0.30", output_per_mtok="1.20").json()
    assert body["price"]["effective_from"] == "2000-01-01T00:00:00Z"
    assert body["recompute"]["since"] == "2000-01-01T00:00:00Z"
    recompute_run(recompute_id=body["recompute"]["id"])
    costs = dict(Event.objects.values_list("event_id", "cost_usd"))
    assert costs == {"old": mtok(4000, "0.30") + mtok(300, "1.20"), "new": mtok(1000, "0.30") + mtok(50, "1.20")}


def test_a_new_price_for_a_model_the_overrides_already_price_starts_now(project, manage_client):
    price("my-finetune-v1", project=project, input_per_mtok="0.30", output_per_mtok="1.20")
    before = datetime.now(UTC)
    body = post_price(manage_client, model="my-finetune-v1", input_per_mtok="0.25", output_per_mtok="1.00").json()
    started = datetime.fromisoformat(body["price"]["effective_from"].replace("Z", "+00:00"))
    assert before <= started <= datetime.now(UTC)

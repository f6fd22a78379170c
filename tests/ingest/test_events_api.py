"""POST /api/v1/events through HTTP: field rules, batch outcomes, auth, limits, gzip."""

import gzip
import json
import os
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from costwatch.projects.services import api_key_issue, api_key_revoke
from ingest.models import DirtyHour, Event, Feature
from tests.ingest.helpers import event, iso, mtok, price, recent

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"


def post(client, events, **extra):
    return client.post(URL, data=json.dumps({"events": events}), content_type="application/json", **extra)


def without(field):
    body = event("bad")
    del body[field]
    return body


NOW = datetime.now(UTC)
FIELD_RULES = [
    # (event, field, code, message)
    (without("event_id"), "event_id", "required", "is required"),
    (event(""), "event_id", "min_length", "must not be empty"),
    (event("x" * 129), "event_id", "max_length", "must be at most 128 characters"),
    (event(12), "event_id", "type", "must be a string"),
    (without("timestamp"), "timestamp", "required", "is required"),
    (event("bad", timestamp="2026-11-26T07:00:00"), "timestamp", "invalid",
     "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-26T07:00:00Z"),
    (event("bad", timestamp="yesterday"), "timestamp", "invalid",
     "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-26T07:00:00Z"),
    (event("bad", timestamp=iso(NOW + timedelta(minutes=10))), "timestamp", "in_future",
     "must be at most 5 minutes in the future"),
    (event("bad", timestamp=iso(NOW - timedelta(days=91))), "timestamp", "too_old", "must be at most 90 days old"),
    (without("feature"), "feature", "required", "is required"),
    (event("bad", feature="checkout/summary"), "feature", "invalid", "may contain only letters, digits and . _ : -"),
    (event("bad", feature="checkout\n"), "feature", "invalid", "may contain only letters, digits and . _ : -"),
    (event("bad", feature="f" * 101), "feature", "max_length", "must be at most 100 characters"),
    (without("model"), "model", "required", "is required"),
    (event("bad", model=""), "model", "min_length", "must not be empty"),
    (event("bad", model="m" * 201), "model", "max_length", "must be at most 200 characters"),
    (event("bad", provider="p" * 51), "provider", "max_length", "must be at most 50 characters"),
    (event("bad", tier="medium"), "tier", "invalid_choice", "must be one of lite, pro"),
    (without("input_tokens"), "input_tokens", "required", "is required"),
    (event("bad", input_tokens="12"), "input_tokens", "type", "must be a JSON integer"),
    (event("bad", input_tokens=12.5), "input_tokens", "type", "must be a JSON integer"),
    (event("bad", input_tokens=True), "input_tokens", "type", "must be a JSON integer"),
    (event("bad", input_tokens=-1), "input_tokens", "min_value", "must be >= 0"),
    (event("bad", input_tokens=2**31), "input_tokens", "max_value", "must be <= 2147483647"),
    (event("bad", input_tokens=None), "input_tokens", "null", "must not be null"),
    (event("bad", cached_input_tokens=-5), "cached_input_tokens", "min_value", "must be >= 0"),
    (event("bad", input_tokens=10, cached_input_tokens=11), "cached_input_tokens", "max_value",
     "cached_input_tokens + cache_write_input_tokens must be <= input_tokens"),
    (event("bad", input_tokens=10, cached_input_tokens=6, cache_write_input_tokens=5), "cache_write_input_tokens",
     "max_value", "cached_input_tokens + cache_write_input_tokens must be <= input_tokens"),
    (without("output_tokens"), "output_tokens", "required", "is required"),
    (event("bad", output_tokens=-1), "output_tokens", "min_value", "must be >= 0"),
    (event("bad", output_tokens=10, reasoning_tokens=11), "reasoning_tokens", "max_value", "must be <= output_tokens"),
    (event("bad", reasoning_tokens="3"), "reasoning_tokens", "type", "must be a JSON integer"),
    (event("bad", max_output_tokens=0), "max_output_tokens", "min_value", "must be >= 1"),
    (event("bad", max_output_tokens=1.5), "max_output_tokens", "type", "must be a JSON integer"),
    (event("bad", service_tier="economy"), "service_tier", "invalid_choice",
     "must be one of standard, batch, flex, priority"),
    (event("bad", finish_reason=""), "finish_reason", "min_length", "must not be empty"),
    (event("bad", latency_ms=-3), "latency_ms", "min_value", "must be >= 0"),
    (event("bad", ttft_ms="fast"), "ttft_ms", "type", "must be a JSON integer"),
    (event("bad", status="failed"), "status", "invalid_choice", "must be one of ok, error"),
    (event("bad", environment="e" * 51), "environment", "max_length", "must be at most 50 characters"),
    (event("bad", role="judge"), "role", "invalid_choice", "must be one of primary, triage, escalation, shadow"),
    (event("bad", request_id="r" * 129), "request_id", "max_length", "must be at most 128 characters"),
    (event("bad", parent_event_id=""), "parent_event_id", "min_length", "must not be empty"),
    (event("bad", route_reason="r" * 51), "route_reason", "max_length", "must be at most 50 characters"),
    (event("bad", confidence=1.2), "confidence", "max_value", "must be between 0 and 1"),
    (event("bad", quality=-0.1), "quality", "min_value", "must be between 0 and 1"),
    (event("bad", quality="0.5"), "quality", "type", "must be a number"),
    (event("bad", cost_usd=-0.5), "cost_usd", "min_value", "must be >= 0"),
    (event("bad", cost_usd="lots"), "cost_usd", "invalid", "must be a decimal string or a number, e.g. \"0.0123\""),
    (event("bad", cost_usd=[1]), "cost_usd", "type", "must be a decimal string or a number"),
    (event("bad", attributes=["a"]), "attributes", "type", "must be an object"),
    (event("bad", attributes={f"k{i}": i for i in range(21)}), "attributes", "max_length", "must have at most 20 keys"),
    (event("bad", attributes={"nested": {"a": 1}}), "attributes", "invalid",
     "value of 'nested' must be a string, number, boolean or null"),
    (event("bad", attributes={"big": "x" * 2100}), "attributes", "max_length", "must be at most 2048 bytes as JSON"),
    (event("bad\x00"), "event_id", "invalid", "must not contain the NUL character (\\u0000)"),
    (event("bad", model="m\x00"), "model", "invalid", "must not contain the NUL character (\\u0000)"),
    (event("bad", attributes={"k": "v\x00"}), "attributes", "invalid",
     "the key or value of 'k' must not contain the NUL character (\\u0000)"),
    (event("bad", attributes={"k\x00": 1}), "attributes", "invalid",
     "the key or value of 'k\\x00' must not contain the NUL character (\\u0000)"),
]


@pytest.mark.parametrize(("bad", "field", "code", "message"), FIELD_RULES,
                         ids=[f"{rule[1]}-{rule[2]}-{i}" for i, rule in enumerate(FIELD_RULES)])
def test_it_rejects_each_broken_field_rule_with_field_code_and_message(ingest_client, bad, field, code, message):
    response = post(ingest_client, [event("good"), bad])
    assert response.status_code == 207, response.json()
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 0, 1)
    event_id = bad.get("event_id") if isinstance(bad.get("event_id"), str) else None
    assert body["errors"] == [{"index": 1, "event_id": event_id, "field": field, "code": code, "message": message}]
    assert list(Event.objects.values_list("event_id", flat=True)) == ["good"]


def test_it_accepts_every_field_at_its_limits(ingest_client):
    price("test-lite-1")  # else the second event's response warns that its model has no price
    body = event("x" * 128, feature="F" * 100, model="m" * 200, provider="p" * 50, tier="pro",
                 input_tokens=2**31 - 1, cached_input_tokens=2**30, cache_write_input_tokens=2**30 - 1,
                 output_tokens=2**31 - 1, reasoning_tokens=2**31 - 1, max_output_tokens=2**31 - 1,
                 service_tier="priority", finish_reason="length", latency_ms=0, ttft_ms=0, status="error",
                 environment="e" * 50, role="shadow", request_id="r" * 128, parent_event_id="p" * 128,
                 route_reason="default", confidence=0, quality=1, cost_usd="0.5",
                 attributes={f"k{i}": i for i in range(20)},
                 timestamp=(datetime.now(UTC) + timedelta(minutes=4)).isoformat())
    response = post(ingest_client, [body, event("old", timestamp=iso(datetime.now(UTC) - timedelta(days=89)))])
    assert response.status_code == 200, response.json()
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": 0, "errors": [], "warnings": []}
    stored = Event.objects.get(event_id="x" * 128)
    assert (stored.input_tokens, stored.client_tier, stored.tier, stored.status) == (2**31 - 1, "pro", "pro", "error")


def test_strings_with_backslashes_tabs_and_newlines_arrive_exactly(ingest_client):
    tricky = "tab\there\nline\\N \\ \u00e9"
    response = post(ingest_client, [event(tricky, request_id="\\N", attributes={"note": tricky}), event("plain")])
    assert response.status_code == 200, response.json()
    stored = Event.objects.get(event_id=tricky)
    assert (stored.request_id, stored.attributes) == ("\\N", {"note": tricky})
    assert Event.objects.get(event_id="plain").attributes == {}


@pytest.mark.parametrize("offset", ["+16:00", "-23:30", "+05:30"])
def test_any_rfc_3339_offset_is_stored_as_its_instant_even_beyond_postgresqls_range(ingest_client, offset):
    # PostgreSQL refuses offsets beyond +-15:59 in text; RFC 3339 allows up to +-23:59.
    instant = recent(2)
    zone = timezone(timedelta(hours=int(offset[1:3]), minutes=int(offset[4:])) * (-1 if offset[0] == "-" else 1))
    sent = instant.astimezone(zone).isoformat()
    plain = post(ingest_client, [event("fast", timestamp=sent)])  # the column path
    slow = post(ingest_client, [event("slow", timestamp=sent, typo=1)])  # the dict path (unknown field)
    assert (plain.status_code, slow.status_code) == (200, 200), (plain.json(), slow.json())
    assert {e.event_id: e.ts for e in Event.objects.all()} == {"fast": instant, "slow": instant}


def test_one_event_can_carry_several_errors(ingest_client):
    response = post(ingest_client, [event("two", input_tokens=-1, role="judge")])
    assert response.status_code == 400
    fields = [(e["field"], e["code"]) for e in response.json()["errors"]]
    assert fields == [("input_tokens", "min_value"), ("role", "invalid_choice")]


def test_a_partial_batch_stores_the_good_and_reports_the_bad_with_index_and_event_id(ingest_client, project):
    response = post(ingest_client, [event("a"), event("b", output_tokens=-1), event("c"), "not an object"])
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert body["errors"] == [
        {"index": 1, "event_id": "b", "field": "output_tokens", "code": "min_value", "message": "must be >= 0"},
        {"index": 3, "event_id": None, "field": None, "code": "type", "message": "an event must be a JSON object"},
    ]
    assert sorted(Event.objects.filter(project=project).values_list("event_id", flat=True)) == ["a", "c"]


def test_a_batch_with_every_event_rejected_is_a_400_that_stores_nothing(ingest_client):
    response = post(ingest_client, [event("a", output_tokens=-1), event("b", model="")])
    assert response.status_code == 400
    assert response.json()["rejected"] == 2 and response.json()["accepted"] == 0
    assert [e["event_id"] for e in response.json()["errors"]] == ["a", "b"]
    assert not Event.objects.exists()


@pytest.mark.parametrize(("raw", "field", "code"), [
    (b"{not json", None, "parse_error"),
    (b"", None, "parse_error"),
    (b"[]", "events", "required"),
    (b'{"evnts": []}', "events", "required"),
    (b'{"events": {}}', "events", "type"),
    (b'{"events": []}', "events", "min_length"),
])
def test_a_body_that_is_not_an_events_batch_is_a_400(ingest_client, raw, field, code):
    response = ingest_client.post(URL, data=raw, content_type="application/json")
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == (field, code)
    assert error["message"]


def test_more_than_1000_events_is_a_400_and_1000_is_fine(ingest_client):
    too_many = post(ingest_client, [event(f"e{i}") for i in range(1001)])
    assert too_many.status_code == 400
    assert too_many.json()["errors"] == [{"field": "events", "code": "max_length",
                                          "message": "must hold at most 1000 events; split the batch"}]
    assert not Event.objects.exists()
    full = post(ingest_client, [event(f"e{i}") for i in range(1000)])
    assert full.status_code == 200 and full.json()["accepted"] == 1000
    assert Event.objects.count() == 1000


def test_duplicates_inside_a_batch_and_across_retries_are_counted_and_stored_once(ingest_client):
    first = post(ingest_client, [event("a"), event("b"), event("a")])
    retry = post(ingest_client, [event("a"), event("b"), event("c")])
    assert first.json() | {"errors": [], "warnings": []} == {"accepted": 2, "duplicates": 1, "rejected": 0,
                                                              "errors": [], "warnings": []}
    assert (retry.status_code, retry.json()["accepted"], retry.json()["duplicates"]) == (200, 1, 2)
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["a", "b", "c"]


def test_a_broken_repeat_inside_a_batch_is_reported_not_counted_as_a_duplicate(ingest_client):
    # Well-typed (the body decodes on the fast path), but the repeat breaks a cross-field rule.
    response = post(ingest_client, [event("a"), event("a", input_tokens=10, cached_input_tokens=11), event("a")])
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 1, 1)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "cached_input_tokens")]


def test_a_batch_of_only_duplicates_and_rejects_is_a_207(ingest_client):
    post(ingest_client, [event("a")])
    response = post(ingest_client, [event("a"), event("b", role="judge")])
    assert response.status_code == 207
    assert (response.json()["accepted"], response.json()["duplicates"], response.json()["rejected"]) == (0, 1, 1)


def test_unknown_top_level_fields_are_dropped_with_a_warning_naming_them(ingest_client):
    price("test-lite-1")
    response = post(ingest_client, [event("a", feture="typo", colour="red")])
    assert response.status_code == 200
    assert response.json()["warnings"] == [
        {"index": 0, "event_id": "a", "field": "feture", "code": "unknown_field",
         "message": "unknown field 'feture' was dropped"},
        {"index": 0, "event_id": "a", "field": "colour", "code": "unknown_field",
         "message": "unknown field 'colour' was dropped"},
    ]
    stored = Event.objects.get(event_id="a")
    assert stored.feature.name == "ticket-triage" and stored.attributes == {}


def test_a_gzip_body_is_accepted(ingest_client):
    raw = gzip.compress(json.dumps({"events": [event("gz1"), event("gz2")]}).encode())
    response = ingest_client.post(URL, data=raw, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 2
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["gz1", "gz2"]


def test_a_broken_gzip_body_is_a_400(ingest_client):
    response = ingest_client.post(URL, data=b"not gzip at all", content_type="application/json",
                                  HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_gzip"


def _padded_body(size):
    padding = "x" * (size - len(json.dumps({"events": [event("big")], "pad": ""})))
    return json.dumps({"events": [event("big")], "pad": padding}).encode()


def test_a_body_over_5_mb_is_a_413_plain_or_after_decompression(ingest_client):
    over = _padded_body(5 * 1024 * 1024 + 1)
    plain = ingest_client.post(URL, data=over, content_type="application/json")
    zipped = ingest_client.post(URL, data=gzip.compress(over), content_type="application/json",
                                HTTP_CONTENT_ENCODING="gzip")
    assert (plain.status_code, zipped.status_code) == (413, 413)
    assert plain.json()["errors"][0]["code"] == "too_large"
    assert zipped.json()["errors"][0]["message"] == "the body is over 5 MB after decompression"
    assert not Event.objects.exists()
    exactly = ingest_client.post(URL, data=_padded_body(5 * 1024 * 1024), content_type="application/json")
    assert exactly.status_code == 200 and Event.objects.count() == 1


def test_a_compressed_body_over_20_mb_is_refused_without_being_inflated(ingest_client):
    incompressible = os.urandom(20 * 1024 * 1024 + 1)  # not even valid gzip: refused on size alone
    response = ingest_client.post(URL, data=incompressible, content_type="application/json",
                                  HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert response.json()["errors"][0]["message"] == "the compressed body is over 20 MB"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_non_json_content_type_is_a_415(ingest_client, content_type):
    response = ingest_client.post(URL, data=json.dumps({"events": [event("a")]}), content_type=content_type)
    assert response.status_code == 415
    assert response.json()["errors"] == [{"field": None, "code": "unsupported_media_type",
                                          "message": "Content-Type must be application/json"}]
    assert not Event.objects.exists()


@pytest.mark.parametrize("header", [None, "Bearer cw_nosuchkey_" + "a" * 30, "Basic abc"])
def test_a_missing_or_unknown_key_is_a_401(project, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = post(client, [event("a")])
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] is None
    assert not Event.objects.exists()


def test_a_revoked_key_is_a_401(project, ingest_client):
    api_key_revoke(api_key=ingest_client.api_key)
    response = post(ingest_client, [event("a")])
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "unknown or revoked API key"


def test_a_key_without_the_ingest_scope_is_a_403(project, read_client):
    response = post(read_client, [event("a")])
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == "this API key lacks the 'ingest' scope"
    assert not Event.objects.exists()


def test_events_land_in_the_keys_own_project(project, key_client):
    from tests.factories import make_project

    other = make_project("Other Co")
    client = key_client(other, "ingest")
    post(client, [event("a", feature="other-feature")])
    assert Event.objects.get(event_id="a").project_id == other.id
    assert not Feature.objects.filter(project=project).exists()


def test_over_the_rate_limit_is_a_429_with_retry_after(settings, project, ingest_client):
    settings.INGEST_RATE_LIMIT = 2  # bucket capacity is one batch of 1000 events
    first = post(ingest_client, [event(f"a{i}") for i in range(1000)])
    second = post(ingest_client, [event("b1"), event("b2"), event("b3"), event("b4"), event("b5")])
    assert first.status_code == 200
    assert second.status_code == 429
    assert 1 <= int(second["Retry-After"]) <= 3
    assert second.json()["errors"][0]["code"] == "rate_limited"
    assert not Event.objects.filter(event_id__startswith="b").exists()


def test_a_project_rate_limit_override_wins_over_the_setting(settings, project, ingest_client):
    settings.INGEST_RATE_LIMIT = 0
    project.ingest_rate_limit = 1
    project.save()
    assert post(ingest_client, [event(f"a{i}") for i in range(1000)]).status_code == 200
    refused = post(ingest_client, [event("b")])
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1


def test_the_postgres_bucket_limits_when_redis_is_not_configured(settings, project, ingest_client):
    from ingest.models import RateBucket

    settings.REDIS_URL = ""
    settings.INGEST_RATE_LIMIT = 1
    assert post(ingest_client, [event(f"a{i}") for i in range(600)]).status_code == 200
    assert post(ingest_client, [event(f"b{i}") for i in range(300)]).status_code == 200
    refused = post(ingest_client, [event(f"c{i}") for i in range(200)])
    assert refused.status_code == 429
    assert 90 <= int(refused["Retry-After"]) <= 100  # ~100 tokens left (plus refill), 200 asked, 1 token/s
    assert RateBucket.objects.get(project=project).tokens < 101
    assert Event.objects.count() == 900


def test_cost_is_computed_at_ingest_through_the_api(ingest_client):
    price("acme-flash-test", provider="google", input_per_mtok="0.30", cached_input_per_mtok="0.075",
          output_per_mtok="2.50", tier="lite")
    response = post(ingest_client, [event("a", model="acme-flash-test", provider="google", input_tokens=4000,
                                          cached_input_tokens=3000, output_tokens=500, reasoning_tokens=200)])
    assert response.status_code == 200
    stored = Event.objects.get(event_id="a")
    assert stored.cost_usd == mtok(1000, "0.30") + mtok(3000, "0.075") + mtok(500, "2.50")
    assert stored.tier == "lite"


def test_accepted_events_mark_their_hours_dirty(ingest_client, project):
    t = recent(hours=5)
    post(ingest_client, [event("a", timestamp=iso(t)), event("b", timestamp=iso(t + timedelta(hours=2)))])
    hours = sorted(h.astimezone(UTC) for h in DirtyHour.objects.filter(project=project).values_list("hour", flat=True))
    assert hours == [t.replace(minute=0), (t + timedelta(hours=2)).replace(minute=0)]


def test_a_session_user_sends_events_with_the_project_parameter(client, user, project):
    client.force_login(user)
    response = client.post(f"{URL}?project={project.slug}", data=json.dumps({"events": [event("s")]}),
                           content_type="application/json")
    assert response.status_code == 200, response.content
    assert Event.objects.get(event_id="s").project_id == project.id


def test_an_ingest_key_from_issue_key_works_end_to_end(project):
    issued = api_key_issue(project=project, scopes=["ingest"])
    client = APIClient()
    response = client.post(URL, data=json.dumps({"events": [event("k")]}), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    assert response.status_code == 200
    assert settings.INGEST_RATE_LIMIT == 0  # tests run unthrottled unless a test sets a limit


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_a_request_larger_than_the_bucket_is_let_through_on_a_full_bucket_not_refused_forever(
        settings, project, backend):
    from ingest.ratelimit import bucket_capacity, ingest_rate_take

    if backend == "postgres":
        settings.REDIS_URL = ""
    settings.INGEST_RATE_LIMIT = 2
    assert bucket_capacity(2) == 1000
    assert ingest_rate_take(project=project, events=8192).allowed  # e.g. one OTLP export of 8192 spans
    refused = ingest_rate_take(project=project, events=1)
    assert not refused.allowed and refused.retry_after >= 1

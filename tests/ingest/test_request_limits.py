"""Bounded work per request on the ingest side: warnings are capped per event and per
response, and the validator's memory does not grow with the number of unknown keys."""

import json
import tracemalloc
from datetime import UTC, datetime

import pytest

from ingest.decoding import event_validate_fast
from ingest.models import Event
from ingest.validation import Context, event_validate
from tests.ingest.helpers import event, price

pytestmark = pytest.mark.django_db
URL = "/api/v1/events"


def post(client, body: bytes, **extra):
    return client.post(URL, data=body, content_type="application/json", **extra)


def _key(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        n, rest = divmod(n, 36)
        text = digits[rest] + text
        if n == 0:
            return "x" + text


def test_an_event_with_450000_unknown_keys_answers_20_warnings_and_is_stored(ingest_client):
    price("test-lite-1")  # else one more warning says that its model has no price
    raw = event("many-keys") | {_key(n): 0 for n in range(450_000)}
    body = json.dumps({"events": [raw]}, separators=(",", ":")).encode()
    assert len(body) < 5 * 1024 * 1024
    response = post(ingest_client, body)
    assert response.status_code == 200
    warnings = response.json()["warnings"]
    assert len(warnings) == 20 and len(response.content) < 10_000
    assert [w["field"] for w in warnings[:19]] == [_key(n) for n in range(19)]
    assert warnings[19] == {"index": 0, "event_id": "many-keys", "field": None, "code": "too_many_warnings",
                            "message": f"{450_000 - 19} more unknown fields were dropped"}
    assert Event.objects.filter(event_id="many-keys").exists()


def test_a_response_carries_at_most_200_warnings_then_says_how_many_more(ingest_client):
    price("test-lite-1")
    events = [event(f"e{i}") | {f"extra_{k}": k for k in range(30)} for i in range(15)]
    response = post(ingest_client, json.dumps({"events": events}).encode())
    assert response.status_code == 200 and response.json()["accepted"] == 15
    warnings = response.json()["warnings"]
    per_event = 19 + 1  # 19 named fields, then "11 more"
    assert len(warnings) == 200 + 1
    assert warnings[-1] == {"field": None, "code": "too_many_warnings",
                            "message": f"{15 * per_event - 200} more warnings were left out"}
    assert warnings[19]["message"] == "11 more unknown fields were dropped"


def test_an_unpriced_event_with_many_unknown_fields_still_gets_at_most_20_warnings_then_the_count(ingest_client):
    raw = event("wide", model="nobody-prices-this-model") | {f"extra_{k}": k for k in range(25)}
    response = post(ingest_client, json.dumps({"events": [raw]}).encode())
    assert response.status_code == 200
    warnings = response.json()["warnings"]
    assert [w["code"] for w in warnings] == ["unknown_field"] * 19 + ["unpriced_model", "too_many_warnings"]
    assert warnings[-1]["message"] == "6 more unknown fields were dropped"


@pytest.mark.parametrize("validate", [event_validate, event_validate_fast])
def test_the_validators_memory_does_not_grow_with_unknown_keys(validate):
    raw = event("many-keys") | {_key(n): 0 for n in range(450_000)}
    ctx = Context(received_at=datetime.now(UTC), max_age_days=90)
    tracemalloc.start()
    try:
        row, errors, warnings = validate(raw, 0, ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert row is not None and errors == [] and len(warnings) == 20  # 19 named, then how many more
    assert peak < 1024 * 1024  # a warning dict per key would be hundreds of MB

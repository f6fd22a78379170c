"""Every declared event field, walked through every consumer with a valid and an invalid value:
the fast decoder, the error-reporting validator, the COPY writer (the row stored in PostgreSQL,
by the API's column path and by the dict path) and the OpenAPI component.

Driven by `ingest.event_fields.EVENT_FIELDS`: a field added there is walked without a change
here, and a consumer that does not know it fails. The values come from SAMPLES below, one
builder per kind of field, with the stored value worked out in plain Python.
"""

import functools
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import jsonschema
import msgspec
import pytest
from drf_spectacular.generators import SchemaGenerator

from ingest import event_fields as declared
from ingest.decoding import FastEvent, batch_decode_strict, columns_from_structs
from ingest.models import Event
from ingest.services import event_batch_ingest, event_rows_store
from ingest.validation import Context, event_validate

INT_MAX = 2**31 - 1
INDIA = timezone(timedelta(hours=5, minutes=30))


def _text(kind):
    letter = kind.charset[0] if kind.charset else "é"  # non-ASCII where any text is allowed
    return letter * kind.max_length, letter * kind.max_length, "x" * (kind.max_length + 1), "max_length"


def _timestamp(_kind):
    sent = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=123456).astimezone(INDIA)
    return sent.isoformat(), sent, sent.replace(tzinfo=None).isoformat(), "invalid"


# kind -> (valid value as sent, value stored, invalid value, the error code it gets)
SAMPLES = {
    declared.Text: _text,
    declared.Choice: lambda kind: (kind.choices[-1], kind.choices[-1], "not-a-choice", "invalid_choice"),
    declared.Count: lambda kind: (INT_MAX, INT_MAX, kind.minimum - 1, "min_value"),
    declared.Unit: lambda _kind: (1, 1.0, 1.5, "max_value"),
    declared.Timestamp: _timestamp,
    declared.Cost: lambda _kind: ("99999999.999999999999", Decimal("99999999.999999999999"), "lots", "invalid"),
    declared.Attributes: lambda _kind: ({"customer": "acme", "seats": 12, "trial": False, "plan": None},
                                       {"customer": "acme", "seats": 12, "trial": False, "plan": None},
                                       "acme", "type"),
}
FIELDS = {field.name: field for field in declared.EVENT_FIELDS}


def base_event(event_id: str) -> dict:
    # Token counts at their maximum, so that any count may take its own maximum without
    # breaking a cross-field rule (parts of a total <= the total).
    return {"event_id": event_id, "timestamp": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
            "feature": "walk", "model": "walk-model", "input_tokens": INT_MAX, "output_tokens": INT_MAX}


def sample(name):
    field = FIELDS[name]
    assert type(field.kind) in SAMPLES, f"add a sample builder for {type(field.kind).__name__} to this test"
    return field, *SAMPLES[type(field.kind)](field.kind)


def with_value(name, value, event_id="walked") -> dict:
    raw = base_event(event_id)
    raw[name] = value
    return raw


def ctx() -> Context:
    return Context(received_at=datetime.now(UTC), max_age_days=90)


def stored_value(field, event_id):
    row = Event.objects.select_related("feature").get(event_id=event_id)
    return row.feature.name if field.column == "feature" else getattr(row, field.column)


@functools.cache
def openapi_event_component() -> tuple[dict, dict]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema["components"]["schemas"]["EventRequest"], schema["components"]


def _is_rfc3339(text) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except (TypeError, ValueError):
        return False


DATE_TIME = jsonschema.FormatChecker()
DATE_TIME.checks("date-time")(_is_rfc3339)


def openapi_accepts(name, value) -> bool:
    component, components = openapi_event_component()
    validator = jsonschema.Draft7Validator({**component["properties"][name], "components": components},
                                           format_checker=DATE_TIME)
    return validator.is_valid(value)


@pytest.mark.parametrize("name", FIELDS)
def test_the_error_reporting_validator_stores_a_valid_value_and_names_the_field_of_an_invalid_one(name):
    field, valid, stored, invalid, code = sample(name)
    row, errors, warnings = event_validate(with_value(name, valid), 0, ctx())
    assert (errors, warnings) == ([], [])
    assert row[field.column] == stored
    row, errors, _warnings = event_validate(with_value(name, invalid), 0, ctx())
    assert row is None
    assert [(error["field"], error["code"]) for error in errors] == [(name, code)]


@pytest.mark.parametrize("name", FIELDS)
def test_the_fast_decoder_takes_a_valid_value_and_never_an_invalid_one(name):
    field, valid, stored, invalid, _code = sample(name)
    decoded = batch_decode_strict(json.dumps({"events": [with_value(name, valid)]}).encode())
    assert decoded is not None, "the whole-body decoder refused a valid value"
    columns, texts = columns_from_structs(decoded, ctx())
    if field.column in columns:
        assert columns[field.column] == [stored]
    else:  # a JSON column comes as its COPY text
        assert json.loads(texts[field.column][0]) == stored
    assert msgspec.convert(with_value(name, valid), FastEvent, strict=True) is not None
    decoded = batch_decode_strict(json.dumps({"events": [with_value(name, invalid)]}).encode())
    assert decoded is None or columns_from_structs(decoded, ctx()) is None


@pytest.mark.django_db
@pytest.mark.parametrize("name", FIELDS)
def test_the_copy_writer_stores_a_valid_value_on_both_paths_and_the_api_refuses_an_invalid_one(
        name, project, ingest_client):
    field, valid, stored, invalid, code = sample(name)
    event_id = valid if name == "event_id" else "walked"
    body = json.dumps({"events": [with_value(name, valid, event_id)]})
    response = ingest_client.post("/api/v1/events", data=body, content_type="application/json")
    assert response.status_code == 200, response.json()
    assert stored_value(field, event_id) == stored
    Event.objects.all().delete()
    result = event_batch_ingest(project=project, events=[with_value(name, valid, event_id)])
    assert (result.accepted, result.errors) == (1, [])
    assert stored_value(field, event_id) == stored
    Event.objects.all().delete()
    body = json.dumps({"events": [with_value(name, invalid, "refused")]})
    response = ingest_client.post("/api/v1/events", data=body, content_type="application/json")
    assert response.status_code == 400
    assert [(error["field"], error["code"]) for error in response.json()["errors"]] == [(name, code)]
    assert not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("name", FIELDS)
def test_an_absent_optional_field_is_stored_as_its_default_and_an_absent_required_one_is_refused(name, project):
    field = FIELDS[name]
    raw = base_event("absent")
    raw.pop(name, None)
    result = event_batch_ingest(project=project, events=[raw])
    if field.required:
        assert [(error["field"], error["code"]) for error in result.errors] == [(name, "required")]
        return
    assert result.accepted == 1
    no_attributes = {}  # attributes: null or absent is stored as an empty object
    default = no_attributes if name == "attributes" else field.default
    assert stored_value(field, "absent") == default
    # A row handed straight to the COPY writer (seed data, benchmarks) without the column
    row = {"event_id": "bare", "ts": datetime.now(UTC), "feature": "walk", "model": "walk-model",
           "input_tokens": 10, "output_tokens": 5}
    assert event_rows_store(project=project, rows=[row]).accepted == 1
    assert stored_value(field, "bare") == default


@pytest.mark.parametrize("name", FIELDS)
def test_the_openapi_component_documents_the_field_with_its_bounds(name):
    field, valid, _stored, invalid, _code = sample(name)
    component, _components = openapi_event_component()
    assert name in component["properties"]
    assert (name in component.get("required", [])) == field.required
    assert openapi_accepts(name, valid)
    assert not openapi_accepts(name, invalid)


def test_the_openapi_component_documents_no_field_that_is_not_declared():
    component, _components = openapi_event_component()
    assert list(component["properties"]) == list(FIELDS)

"""Bad input is a 400 in the envelope, never a 5xx: bodies that are not UTF-8, JSON nested
deeper than 32 levels (events API, OTLP JSON, every other JSON body), and instants whose
UTC value falls outside the calendar (`0001-01-01T00:00:00+01:00`) on every read path."""

import json

import pytest

from budgets.models import Rule
from ingest.models import Event
from tests.ingest.helpers import event

pytestmark = pytest.mark.django_db
DEEP = b"[" * 100_000 + b"]" * 100_000


def nested(levels: int):
    value = 1
    for _ in range(levels):
        value = [value]
    return value


def _error(response, status=400):
    assert response.status_code == status, response.content
    [error] = response.json()["errors"]
    return error


def test_an_events_body_that_is_not_utf8_is_a_400(ingest_client):
    body = json.dumps({"events": [event("a")]}).encode().replace(b'"a"', b'"a\xff\xfe"')
    error = _error(ingest_client.post("/api/v1/events", data=body, content_type="application/json"))
    assert error["code"] == "not_utf8" and "UTF-8" in error["message"]
    assert not Event.objects.exists()


@pytest.mark.parametrize("body", [DEEP, json.dumps({"events": [event("a") | {"extra": nested(30)}]}).encode()],
                         ids=["100000-deep", "33-deep"])
def test_events_json_nested_deeper_than_32_levels_is_a_400(ingest_client, body):
    error = _error(ingest_client.post("/api/v1/events", data=body, content_type="application/json"))
    assert error["code"] == "too_deep" and "32 levels" in error["message"]
    assert not Event.objects.exists()


def test_events_json_nested_32_levels_is_accepted(ingest_client):
    # {"events": [{..., "extra": 29 nested lists}]}: 3 levels + 29 = 32
    body = json.dumps({"events": [event("a") | {"extra": nested(29)}]}).encode()
    response = ingest_client.post("/api/v1/events", data=body, content_type="application/json")
    assert response.status_code == 200 and response.json()["warnings"][0]["field"] == "extra"


def test_otlp_json_nested_100000_deep_is_a_400(ingest_client):
    response = ingest_client.post("/v1/traces", data=DEEP, content_type="application/json")
    error = _error(response)
    assert error["code"] == "too_deep"


@pytest.mark.parametrize("body", [DEEP, b'{"kind": "spend_spike", "params": {"x": "\xff"}}'],
                         ids=["deep", "not-utf8"])
def test_other_json_bodies_that_are_too_deep_or_not_utf8_are_a_400(manage_client, body):
    response = manage_client.post("/api/v1/rules", data=body, content_type="application/json")
    error = _error(response)
    assert error["code"] == "parse_error"
    assert not Rule.objects.exists()


READS = ["/api/v1/features", "/api/v1/timeseries?metric=cost", "/api/v1/timeseries?metric=cost&granularity=hour",
         "/api/v1/models", "/api/v1/breakdown?dimension=customer"]
OUT_OF_CALENDAR = ["start=0001-01-01T00:00:00%2B01:00", "start=0001-01-01", "end=9999-12-31T23:30:00-05:00",
                   "end=9999-12-31"]


@pytest.fixture
def dims(project):
    project.dimensions = ["customer"]
    project.timezone = "Asia/Tokyo"  # days start before UTC's: 0001-01-01 local is before year 1 in UTC
    project.save()
    return project


@pytest.mark.parametrize("query", OUT_OF_CALENDAR)
@pytest.mark.parametrize("path", READS)
def test_read_endpoints_answer_400_naming_the_parameter(dims, read_client, path, query):
    separator = "&" if "?" in path else "?"
    error = _error(read_client.get(f"{path}{separator}{query}"))
    assert error["field"] == query.split("=")[0] and error["code"] == "out_of_range"


@pytest.mark.parametrize("query", OUT_OF_CALENDAR)
@pytest.mark.parametrize("page_path", ["", "features/", "features/ticket-triage/", "models/"])
def test_pages_show_the_error_instead_of_a_500(dims, client, user, page_path, query):
    from tests.budgets.helpers import feature

    feature(dims, "ticket-triage")
    client.force_login(user)
    response = client.get(f"/p/{dims.slug}/{page_path}?{query}")
    assert response.status_code == 200
    assert "must be between 1970-01-01 and 9000-01-01" in response.content.decode()

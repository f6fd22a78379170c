"""The ingest rate limit: every event and GenAI span is charged (a request larger than the
bucket goes into debt), at most 10,000 spans per OTLP request, and what happens when the
limiter's store (Redis) is down is a setting, logged once a minute rather than per request."""

import json
import logging
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import ingest.ratelimit
from costwatch.devtools import free_port
from ingest.models import Event
from ingest.ratelimit import ingest_rate_take
from tests.ingest.helpers import event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_log_clock(monkeypatch):
    monkeypatch.setattr(ingest.ratelimit, "_store_down_logged_at", None, raising=False)


@pytest.fixture
def redis_down(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.INGEST_RATE_LIMIT = 100
    return settings


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_a_request_larger_than_the_bucket_is_charged_every_event_it_holds(settings, project, backend):
    if backend == "postgres":
        settings.REDIS_URL = ""
    settings.INGEST_RATE_LIMIT = 2  # bucket of 1000 (one batch), refilled at 2 events/s
    assert ingest_rate_take(project=project, events=8192).allowed  # one OTLP export of 8192 spans
    refused = ingest_rate_take(project=project, events=1)
    # The bucket owes 8192 - 1000 tokens: at 2/s the next event waits for all of them.
    assert not refused.allowed and refused.retry_after >= (8192 - 1000 + 1) / 2 - 5


def test_redis_down_fails_open_by_default_and_logs_once_a_minute(redis_down, project, ingest_client, caplog):
    caplog.set_level(logging.WARNING, logger="ingest.ratelimit")
    for i in range(30):
        response = ingest_client.post("/api/v1/events", {"events": [event(f"e{i}")]}, format="json")
        assert response.status_code == 200
    assert Event.objects.count() == 30
    warnings = [r for r in caplog.records if r.name == "ingest.ratelimit"]
    assert len(warnings) == 1 and "unthrottled" in warnings[0].getMessage()


def test_redis_down_with_fail_open_off_answers_503_with_retry_after(redis_down, project, ingest_client):
    redis_down.INGEST_RATE_LIMIT_FAIL_OPEN = False
    response = ingest_client.post("/api/v1/events", {"events": [event("e1")]}, format="json")
    assert response.status_code == 503 and int(response["Retry-After"]) >= 1
    [error] = response.json()["errors"]
    assert error["code"] == "rate_limiter_unavailable"
    assert not Event.objects.exists()


def _export(spans: int, *, genai: bool) -> bytes:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    end = time.time_ns() - 60 * 10**9
    for n in range(spans):
        span = scope_spans.spans.add(trace_id=n.to_bytes(16, "big"), span_id=(n + 1).to_bytes(8, "big"),
                                     name="chat test-lite-1", start_time_unix_nano=end - 10**9,
                                     end_time_unix_nano=end)
        if genai:
            for key, value in (("gen_ai.request.model", "test-lite-1"), ("costwatch.feature", "triage")):
                span.attributes.add(key=key).value.string_value = value
            for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
                span.attributes.add(key=key).value.int_value = 10
    return request.SerializeToString()


def test_an_otlp_request_over_10000_spans_is_a_400_naming_the_limit_and_stores_nothing(project, ingest_client):
    response = ingest_client.post("/v1/traces", data=_export(10_001, genai=True),
                                  content_type="application/x-protobuf")
    assert response.status_code == 400
    assert not Event.objects.exists()
    json_body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": f"{n:032x}", "spanId": f"{n + 1:016x}", "name": "x"} for n in range(10_001)]}]}]})
    response = ingest_client.post("/v1/traces", data=json_body, content_type="application/json")
    [error] = response.json()["errors"]
    assert response.status_code == 400 and error["code"] == "too_many_spans"
    assert error["field"] == "resourceSpans" and "at most 10000 spans" in error["message"]


def test_an_otlp_request_of_10000_spans_is_taken(project, ingest_client):
    response = ingest_client.post("/v1/traces", data=_export(10_000, genai=False),
                                  content_type="application/x-protobuf")
    assert response.status_code == 200 and response["X-Costwatch-Ignored-Spans"] == "10000"

"""POST /v1/traces against a live server: the real OpenTelemetry SDK and its OTLP/HTTP exporter,
OTLP JSON, gzip, partial_success, auth, and spans from opentelemetry-instrumentation-openai-v2
around a real openai client talking to a local fake OpenAI server."""

import gzip
import json
import urllib.error
import urllib.request
import zlib

import openai
import pytest
from costwatch_client.otel import TrackSpanProcessor
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from costwatch.projects.services import api_key_issue
from costwatch_client import track
from ingest.models import Event
from tests.integrations.otel import SpanMaker, chat_attributes, recent_ns

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ingest_key(project):
    return api_key_issue(project=project, scopes=["ingest"]).plaintext


@pytest.fixture
def span_makers():
    made = []

    def make(resource_attributes, processors=()):
        maker = SpanMaker(resource_attributes=resource_attributes, processors=processors)
        made.append(maker)
        return maker

    yield make
    for maker in made:
        maker.shutdown()


def exporter_for(live_server, key, compression=Compression.Gzip):
    return OTLPSpanExporter(endpoint=f"{live_server.url}/v1/traces", headers={"Authorization": f"Bearer {key}"},
                            compression=compression, timeout=10)


def rows(project):
    return {e.event_id: e for e in Event.objects.filter(project=project).select_related("feature")}


def span_event_id(span):
    context = span.get_span_context()
    return f"{context.trace_id:032x}{context.span_id:016x}"


def post(live_server, body, *, key, content_type="application/x-protobuf", encoding=None):
    headers = {"Content-Type": content_type}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if encoding:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(f"{live_server.url}/v1/traces", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_otlp_exporter_stores_genai_spans_as_events(project, live_server, ingest_key, span_makers):
    exporter = exporter_for(live_server, ingest_key)
    maker = span_makers({"service.name": "support-bot", "costwatch.feature": "ticket-triage",
                         "deployment.environment.name": "staging"}, processors=[SimpleSpanProcessor(exporter)])
    start = recent_ns()

    capped = maker.span("chat gpt-5-mini", chat_attributes(**{
        "gen_ai.request.max_tokens": 512, "gen_ai.usage.cache_read.input_tokens": 1024,
        "gen_ai.usage.reasoning.output_tokens": 100, "gen_ai.response.finish_reasons": ["length"],
        "costwatch.role": "triage", "costwatch.request_id": "req-1", "costwatch.route_reason": "simple",
        "costwatch.quality": 0.8}), start_ns=start, duration_ms=1234)
    uncapped = maker.span("chat claude", {
        "gen_ai.operation.name": "chat", "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.usage.prompt_tokens": 50, "gen_ai.usage.completion_tokens": 70,
        "gen_ai.usage.cache_creation_input_tokens": 30, "costwatch.feature": "summaries"}, start_ns=start)
    maker.span("SELECT tickets", {"db.system.name": "postgresql"}, start_ns=start)

    stored = rows(project)
    assert set(stored) == {span_event_id(capped), span_event_id(uncapped)}
    first, second = stored[span_event_id(capped)], stored[span_event_id(uncapped)]
    assert (first.feature.name, first.environment, first.model, first.provider) == (
        "ticket-triage", "staging", "gpt-5-mini-2025-08-07", "openai")
    assert (first.input_tokens, first.cached_input_tokens, first.output_tokens, first.reasoning_tokens) == (
        1200, 1024, 300, 100)
    assert (first.max_output_tokens, first.cap_known, first.finish_reason, first.latency_ms) == (
        512, True, "length", 1234)
    assert (first.role, first.request_id, first.route_reason, first.quality) == ("triage", "req-1", "simple", 0.8)
    assert first.ts.timestamp() == (start + 1234 * 1_000_000) / 1e9  # the span's end
    assert (second.feature.name, second.model, second.provider) == ("summaries", "claude-haiku-4-5", "anthropic")
    # Alias names; the cache write fits inside input_tokens, so input is taken as all input.
    assert (second.input_tokens, second.cache_write_input_tokens, second.output_tokens) == (50, 30, 70)
    assert (second.max_output_tokens, second.cap_known) == (None, False)  # no cap attribute: cap unknown


def test_an_export_repeated_by_the_exporter_is_stored_once(project, live_server, ingest_key, span_makers):
    maker = span_makers({"service.name": "support-bot"})
    maker.span("chat gpt-5-mini", chat_attributes(), start_ns=recent_ns())
    exporter = exporter_for(live_server, ingest_key, compression=Compression.NoCompression)

    spans = maker.memory.get_finished_spans()
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS

    (row,) = rows(project).values()
    assert row.feature.name == "support-bot"  # service.name: the span name is no feature


def test_it_reports_rejected_spans_in_partial_success(project, live_server, ingest_key, span_makers):
    maker = span_makers({"service.name": "support-bot"})
    start = recent_ns()
    good = maker.span("chat ok", chat_attributes(), start_ns=start)
    maker.span("chat bad", chat_attributes(**{"gen_ai.usage.output_tokens": -5}), start_ns=start)
    maker.span("chat nameless", chat_attributes(**{"costwatch.feature": "bad/feature"}), start_ns=start)
    maker.span("GET /", {"http.request.method": "GET"}, start_ns=start)
    body = maker.export_request().SerializeToString()

    status, headers, payload = post(live_server, gzip.compress(body), key=ingest_key, encoding="gzip")

    assert status == 200 and headers["Content-Type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(payload)
    assert response.partial_success.rejected_spans == 2
    assert "chat bad" in response.partial_success.error_message
    assert "output_tokens" in response.partial_success.error_message
    assert "feature" in response.partial_success.error_message
    assert list(rows(project)) == [span_event_id(good)]
    assert (headers["X-Costwatch-Accepted"], headers["X-Costwatch-Rejected"], headers["X-Costwatch-Ignored-Spans"]) == (
        "1", "2", "1")


def otlp_json(export_request):
    """OTLP JSON as exporters write it: camelCase and hex trace/span ids (not base64)."""
    document = json_format.MessageToDict(export_request)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = __import__("base64").b64decode(span[key]).hex()
    return json.dumps(document).encode()


def test_it_accepts_otlp_json_with_hex_ids_and_answers_in_json(project, live_server, ingest_key, span_makers):
    maker = span_makers({"service.name": "support-bot"})
    span = maker.span("chat gpt-5-mini", chat_attributes(**{"gen_ai.request.max_tokens": 64}), start_ns=recent_ns())
    ok_body = otlp_json(maker.export_request())
    assert span_event_id(span)[:32].encode() in ok_body  # the request really carries hex ids

    status, headers, payload = post(live_server, ok_body, key=ingest_key, content_type="application/json")

    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(payload) == {}  # all accepted: no partial_success
    (row,) = rows(project).values()
    assert (row.event_id, row.max_output_tokens, row.cap_known) == (span_event_id(span), 64, True)

    status, headers, _ = post(live_server, zlib.compress(ok_body), key=ingest_key, content_type="application/json",
                              encoding="deflate")
    assert (status, headers["X-Costwatch-Duplicates"], Event.objects.count()) == (200, "1", 1)

    maker.memory.clear()
    maker.span("chat bad", chat_attributes(**{"gen_ai.usage.input_tokens": "many"}), start_ns=recent_ns())
    status, _, payload = post(live_server, otlp_json(maker.export_request()), key=ingest_key,
                              content_type="application/json")
    assert status == 200
    partial = json.loads(payload)["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "input_tokens" in partial["errorMessage"]


def test_it_refuses_a_missing_key_a_key_without_ingest_scope_and_garbage(project, live_server, span_makers):
    maker = span_makers({"service.name": "svc"})
    maker.span("chat gpt-5-mini", chat_attributes(), start_ns=recent_ns())
    body = maker.export_request().SerializeToString()
    read_key = api_key_issue(project=project, scopes=["read"]).plaintext
    ingest_key = api_key_issue(project=project, scopes=["ingest"]).plaintext

    status, headers, payload = post(live_server, body, key=None)
    assert status == 401 and headers["Content-Type"] == "application/x-protobuf"
    assert status_pb2.Status.FromString(payload).code == 16  # UNAUTHENTICATED

    status, _, payload = post(live_server, body, key=read_key)
    assert status == 403
    assert "ingest" in status_pb2.Status.FromString(payload).message

    status, _, payload = post(live_server, b"\xff\xff\xff not protobuf", key=ingest_key)
    assert status == 400 and status_pb2.Status.FromString(payload).code == 3

    status, _, payload = post(live_server, b"{]", key=ingest_key, content_type="application/json")
    assert status == 400 and json.loads(payload)["errors"][0]["code"] == "parse_error"

    status, _, payload = post(live_server, body, key=ingest_key, content_type="text/plain")
    assert status == 415 and json.loads(payload)["errors"][0]["code"] == "unsupported_media_type"
    assert not Event.objects.filter(project=project).exists()


CHAT_COMPLETION = {
    "id": "chatcmpl-otel", "object": "chat.completion", "created": 1764000000, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "finish_reason": "length",
                 "message": {"role": "assistant", "content": "Your refund is on its way"}}],
    "usage": {"prompt_tokens": 321, "completion_tokens": 48, "total_tokens": 369},
}


def test_spans_from_the_openai_instrumentation_become_events(project, live_server, ingest_key, span_makers,
                                                              httpserver, monkeypatch):
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(CHAT_COMPLETION)
    # The resource names a service-wide feature; track() names this call's, via TrackSpanProcessor.
    maker = span_makers({"service.name": "support-bot", "costwatch.feature": "support-default"},
                        processors=[TrackSpanProcessor(), SimpleSpanProcessor(exporter_for(live_server, ingest_key))])
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=maker.provider)
    try:
        sdk = openai.OpenAI(base_url=httpserver.url_for("/v1"), api_key="sk-test")
        with track(feature="refund-answer", role="escalation", request_id="req-7", attributes={"plan": "pro"}):
            sdk.chat.completions.create(model="gpt-4o-mini", max_tokens=48,
                                        messages=[{"role": "user", "content": "Where is my refund?"}])
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Thanks"}])
    finally:
        instrumentor.uninstrument()

    tracked, untracked = [s for s in maker.memory.get_finished_spans() if s.attributes.get("gen_ai.request.model")]
    assert "gen_ai.input.messages" not in tracked.attributes  # content capture is off
    stored = rows(project)
    assert set(stored) == {span_event_id(tracked), span_event_id(untracked)}
    row = stored[span_event_id(tracked)]
    assert (row.feature.name, row.model, row.provider) == ("refund-answer", "gpt-4o-mini-2024-07-18", "openai")
    assert (row.role, row.request_id, row.attributes) == ("escalation", "req-7", {"plan": "pro"})
    assert (row.input_tokens, row.output_tokens, row.cached_input_tokens) == (321, 48, 0)
    assert (row.max_output_tokens, row.cap_known, row.finish_reason) == (48, True, "length")
    assert row.latency_ms is not None
    other = stored[span_event_id(untracked)]
    assert (other.feature.name, other.role, other.request_id) == ("support-default", "primary", "")
    assert (other.max_output_tokens, other.cap_known) == (None, False)  # no max_tokens: cap unknown


def test_genai_spans_count_against_the_ingest_rate_limit(project, live_server, ingest_key, span_makers):
    project.ingest_rate_limit = 1  # a bucket of one batch (1000 events), refilled at 1 event/s
    project.save(update_fields=["ingest_rate_limit"])
    maker = span_makers({"service.name": "support-bot"})
    start = recent_ns()
    for _ in range(1000):
        maker.span("chat gpt-5-mini", chat_attributes(), start_ns=start)
    full_batch = maker.export_request().SerializeToString()
    maker.memory.clear()
    for _ in range(60):  # a minute of refill: the test may take seconds on a busy machine
        maker.span("chat gpt-5-mini", chat_attributes(), start_ns=start)
    more = maker.export_request().SerializeToString()
    maker.memory.clear()
    maker.span("GET /tickets", {"http.request.method": "GET"}, start_ns=start)
    no_genai = maker.export_request().SerializeToString()

    assert post(live_server, full_batch, key=ingest_key)[0] == 200
    status, headers, payload = post(live_server, more, key=ingest_key)
    ignored_status, ignored_headers, _ = post(live_server, no_genai, key=ingest_key)

    assert status == 429 and int(headers["Retry-After"]) >= 1  # OTLP exporters retry after it
    assert status_pb2.Status.FromString(payload).code == 8  # RESOURCE_EXHAUSTED
    assert Event.objects.filter(project=project).count() == 1000
    assert (ignored_status, ignored_headers["X-Costwatch-Ignored-Spans"]) == (200, "1")  # ignored spans are free

"""OTLP span -> event dict (docs/sending-events.md#3-opentelemetry), the pure conversion, on spans made by the real
OpenTelemetry SDK and encoded exactly as its OTLP exporter encodes them."""

from datetime import UTC, datetime

from ingest.otlp import request_events
from tests.integrations.otel import SpanMaker, chat_attributes, recent_ns

START = 1_795_672_800 * 1_000_000_000 + 123_456_789  # any fixed instant; nothing here is ingested


def convert(*specs, resource=None):
    maker = SpanMaker(resource_attributes=resource or {"service.name": "support-bot"})
    spans = [maker.span(name, attributes, start_ns=START, duration_ms=duration) for name, attributes, duration in
             specs]
    found = request_events(maker.export_request())
    maker.shutdown()
    return found, spans


def test_it_maps_every_genai_attribute_of_a_chat_span():
    attributes = chat_attributes(**{
        "gen_ai.request.max_tokens": 512,
        "gen_ai.usage.cache_read.input_tokens": 1024,
        "gen_ai.usage.cache_creation.input_tokens": 64,
        "gen_ai.usage.reasoning.output_tokens": 128,
        "gen_ai.response.finish_reasons": ["length"],
        "costwatch.feature": "ticket-triage", "costwatch.role": "escalation", "costwatch.request_id": "req-9",
        "costwatch.route_reason": "low_confidence", "costwatch.quality": 0.75, "costwatch.confidence": 0.4,
        "costwatch.parent_event_id": "evt-lite-1", "costwatch.attr.customer": "acme",
    })

    found, (span,) = convert(("chat gpt-5-mini", attributes, 1500))

    (event,) = found.events
    context = span.get_span_context()
    assert event == {
        "event_id": f"{context.trace_id:032x}{context.span_id:016x}",
        "timestamp": datetime.fromtimestamp((START + 1_500_000_000) // 10**9, UTC).replace(
            microsecond=((START + 1_500_000_000) % 10**9) // 1000).isoformat(),
        "latency_ms": 1500,
        "feature": "ticket-triage",
        "model": "gpt-5-mini-2025-08-07",  # the response model wins over the request model
        "provider": "openai",
        "input_tokens": 1200, "output_tokens": 300, "cached_input_tokens": 1024, "cache_write_input_tokens": 64,
        "reasoning_tokens": 128,
        "max_output_tokens": 512,
        "finish_reason": "length",
        "role": "escalation", "request_id": "req-9", "route_reason": "low_confidence", "quality": 0.75,
        "confidence": 0.4, "parent_event_id": "evt-lite-1",
        "attributes": {"customer": "acme"},
    }
    assert event["timestamp"].endswith("+00:00")
    assert found.ignored == 0


def test_it_leaves_the_cap_out_when_the_span_has_none():
    found, _ = convert(("chat gpt-5-mini", chat_attributes(), 100))

    assert "max_output_tokens" not in found.events[0]  # stored as cap unknown, not as "no cap"


def test_it_reads_older_attribute_names_through_the_alias_table():
    attributes = {
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.usage.prompt_tokens": 40,
        "gen_ai.usage.completion_tokens": 90,
        "gen_ai.usage.cache_read_input_tokens": 3000,
        "gen_ai.usage.cache_creation_input_tokens": 500,
        "gen_ai.response.finish_reasons": ["end_turn"],
    }

    found, _ = convert(("anthropic.chat", attributes, 100))

    event = found.events[0]
    assert (event["model"], event["provider"]) == ("claude-haiku-4-5", "anthropic")
    # input reported beside the cache (Anthropic style) becomes all input.
    assert (event["input_tokens"], event["cached_input_tokens"], event["cache_write_input_tokens"]) == (
        40 + 3000 + 500, 3000, 500)
    assert (event["output_tokens"], event["finish_reason"]) == (90, "stop")


def test_it_keeps_input_as_is_when_it_already_includes_the_cache():
    found, _ = convert(("chat", chat_attributes(**{"gen_ai.usage.cache_read.input_tokens": 1000}), 100))

    assert (found.events[0]["input_tokens"], found.events[0]["cached_input_tokens"]) == (1200, 1000)


def test_it_takes_the_feature_from_the_span_then_the_resource_then_the_service_name():
    resource = {"service.name": "Support Bot (EU)", "costwatch.feature": "resource-feature",
                "deployment.environment.name": "staging"}
    found, _ = convert(("chat a", chat_attributes(**{"costwatch.feature": "span-feature"}), 10),
                       ("chat b", chat_attributes(), 10), resource=resource)
    assert [e["feature"] for e in found.events] == ["span-feature", "resource-feature"]
    assert {e["environment"] for e in found.events} == {"staging"}

    found, _ = convert(("chat gpt-5-mini", chat_attributes(), 10), resource={"service.name": "Support Bot (EU)"})
    assert found.events[0]["feature"] == "Support-Bot-EU"  # never the span name; made URL-safe


def test_it_normalises_google_provider_and_finish_reasons():
    attributes = chat_attributes(**{"gen_ai.provider.name": "gcp.gemini", "gen_ai.response.model": None,
                                    "gen_ai.request.model": "gemini-2.5-flash",
                                    "gen_ai.response.finish_reasons": ["STOP", "MAX_TOKENS"]})

    found, _ = convert(("generate_content gemini-2.5-flash", attributes, 10))

    event = found.events[0]
    assert (event["provider"], event["model"], event["finish_reason"]) == ("google", "gemini-2.5-flash", "length")


def test_it_ignores_and_counts_spans_without_genai_attributes_and_agent_spans():
    found, _ = convert(
        ("GET /tickets", {"http.request.method": "GET", "http.route": "/tickets"}, 10),
        ("invoke_agent triage", {"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 5000,
                                 "gen_ai.usage.output_tokens": 900}, 10),
        ("chat gpt-5-mini", chat_attributes(), 10),
    )

    assert found.ignored == 2  # the agent's usage sums its calls: counting it would double them
    assert [e["model"] for e in found.events] == ["gpt-5-mini-2025-08-07"]


def test_it_marks_a_failed_call_as_an_error_with_zero_tokens():
    maker = SpanMaker(resource_attributes={"service.name": "svc"})
    maker.span("chat gpt-5-mini", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-5-mini",
                                   "error.type": "RateLimitError"}, start_ns=recent_ns(), error=True)

    (event,) = request_events(maker.export_request()).events

    assert (event["status"], event["input_tokens"], event["output_tokens"]) == ("error", 0, 0)


def test_it_converts_integral_doubles_and_digit_strings_to_token_counts():
    found, _ = convert(("chat", chat_attributes(**{"gen_ai.usage.input_tokens": 77.0,
                                                   "gen_ai.usage.output_tokens": "12"}), 10))

    assert (found.events[0]["input_tokens"], found.events[0]["output_tokens"]) == (77, 12)


def test_an_embeddings_span_has_zero_output_tokens():
    found, _ = convert(("embeddings text-embedding-3-small", {
        "gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 812}, 10))

    event = found.events[0]
    assert (event["model"], event["input_tokens"], event["output_tokens"]) == ("text-embedding-3-small", 812, 0)


def test_a_chat_span_without_usage_keeps_its_tokens_absent_so_it_is_rejected_by_name():
    found, _ = convert(("chat", chat_attributes(**{"gen_ai.usage.input_tokens": None,
                                                   "gen_ai.usage.output_tokens": None}), 10))

    assert "input_tokens" not in found.events[0] and "output_tokens" not in found.events[0]

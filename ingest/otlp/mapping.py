"""OTLP spans -> event dicts (pure): one GenAI model-call span becomes one events API event.

Attribute names follow the OpenTelemetry GenAI semantic conventions, current name first, then the
older aliases instrumentations still emit; docs/sending-events.md#how-a-span-becomes-an-event
lists what maps to what.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry.proto.trace.v1.trace_pb2 import Status

# Event field -> span attributes, current semantic-convention name first, then older aliases.
TOKEN_ATTRIBUTES = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                      "llm.usage.completion_tokens"),
    "cached_input_tokens": ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                            "gen_ai.usage.input_tokens.cached"),
    "cache_write_input_tokens": ("gen_ai.usage.cache_creation.input_tokens",
                                 "gen_ai.usage.cache_creation_input_tokens",
                                 "gen_ai.usage.input_tokens.cache_write"),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.output_tokens.reasoning",
                         "gen_ai.usage.reasoning_tokens"),
}
MODEL_ATTRIBUTES = ("gen_ai.response.model", "gen_ai.request.model")
PROVIDER_ATTRIBUTES = ("gen_ai.provider.name", "gen_ai.system")
CAP_ATTRIBUTES = ("gen_ai.request.max_tokens", "gen_ai.request.max_output_tokens")
FINISH_ATTRIBUTES = ("gen_ai.response.finish_reasons", "gen_ai.response.finish_reason")
SERVICE_TIER_ATTRIBUTES = ("gen_ai.openai.response.service_tier", "openai.response.service_tier")
ENVIRONMENT_RESOURCE_ATTRIBUTES = ("deployment.environment.name", "deployment.environment")
# costwatch.<field> attributes (span first, then resource) that map 1:1 onto event fields.
COSTWATCH_FIELDS = ("feature", "environment", "role", "request_id", "parent_event_id", "route_reason", "tier",
                    "service_tier", "quality", "confidence", "cost_usd")
ATTRIBUTE_PREFIX = "costwatch.attr."  # costwatch.attr.customer=acme -> attributes {"customer": "acme"}

# Operations that are not a model call: agent and tool spans may carry usage summed over the
# calls beneath them, so counting them would count those calls twice.
NON_CALL_OPERATIONS = frozenset({"execute_tool", "invoke_agent", "create_agent", "invoke_workflow"})

# gen_ai.provider.name / gen_ai.system values -> the provider names that price rows use.
PROVIDERS = {
    "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google", "vertex_ai": "google",
    "gemini": "google", "google": "google", "anthropic": "anthropic", "aws.bedrock": "bedrock",
    "azure.ai.openai": "azure", "az.ai.openai": "azure", "azure.ai.inference": "azure",
    "az.ai.inference": "azure", "openai": "openai",
}
FINISH_REASONS = {
    "stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "length": "length", "max_tokens": "length",
    "max_output_tokens": "length", "tool_calls": "tool_calls", "tool_use": "tool_calls",
    "function_call": "tool_calls", "content_filter": "content_filter", "refusal": "content_filter",
    "safety": "content_filter", "recitation": "content_filter", "blocklist": "content_filter",
    "prohibited_content": "content_filter", "spii": "content_filter", "error": "error",
}
FEATURE_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


def any_value(value):
    """An OTLP AnyValue as a plain Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def attributes_dict(key_values) -> dict:
    return {kv.key: any_value(kv.value) for kv in key_values}


def is_genai_span(attributes: dict) -> bool:
    """A model call described with GenAI attributes (not an agent or tool span)."""
    if not any(key.startswith("gen_ai.") for key in attributes):
        return False
    return attributes.get("gen_ai.operation.name") not in NON_CALL_OPERATIONS


def _first(attributes: dict, names):
    for name in names:
        if attributes.get(name) is not None:
            return attributes[name]
    return None


def _token_count(value):
    """Integral numbers (and digit strings, which some instrumentations emit) as int; anything
    else is passed through so that validation rejects it with a message naming the field."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _finish_reason(value):
    reasons = value if isinstance(value, list) else [value]
    normalised = [FINISH_REASONS.get(str(r).lower(), str(r).lower()[:50]) for r in reasons if r]
    if "length" in normalised:  # one truncated choice means the cap was hit
        return "length"
    return normalised[0] if normalised else None


def _rfc3339(unix_nanos: int) -> str:
    seconds, nanos = divmod(unix_nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000).isoformat()


def _feature(span_attributes: dict, resource_attributes: dict):
    explicit = span_attributes.get("costwatch.feature") or resource_attributes.get("costwatch.feature")
    if explicit is not None:
        return explicit  # as sent: a bad name is rejected with a message, not silently rewritten
    service = resource_attributes.get("service.name")
    if isinstance(service, str) and service.strip():
        # The span name ("chat gpt-4o") is no feature; the service is the best stand-in.
        return FEATURE_UNSAFE.sub("-", service.strip()).strip("-")[:100] or None
    return None


def _costwatch_fields(span_attributes: dict, resource_attributes: dict) -> dict:
    fields = {}
    for name in COSTWATCH_FIELDS:
        value = span_attributes.get(f"costwatch.{name}", resource_attributes.get(f"costwatch.{name}"))
        if value is not None:
            fields[name] = value
    if "environment" not in fields:
        environment = _first(resource_attributes, ENVIRONMENT_RESOURCE_ATTRIBUTES)
        if environment:
            fields["environment"] = environment
    attributes = {}
    for source in (resource_attributes, span_attributes):  # span wins over resource
        for key, value in source.items():
            if key.startswith(ATTRIBUTE_PREFIX) and len(key) > len(ATTRIBUTE_PREFIX):
                attributes[key[len(ATTRIBUTE_PREFIX):]] = value
    if attributes:
        fields["attributes"] = attributes
    return fields


def _tokens(attributes: dict) -> dict:
    tokens = {}
    for field_name, names in TOKEN_ATTRIBUTES.items():
        value = _first(attributes, names)
        if value is not None:
            tokens[field_name] = _token_count(value)
    cached, written, total = (tokens.get("cached_input_tokens", 0), tokens.get("cache_write_input_tokens", 0),
                              tokens.get("input_tokens"))
    if all(isinstance(v, int) for v in (cached, written, total)) and cached + written > total:
        # Semantic conventions count cache reads/writes inside input_tokens; some (older,
        # Anthropic-style) instrumentations report them beside it. Make input all input.
        tokens["input_tokens"] = total + cached + written
    return tokens


def span_event(span, *, resource_attributes: dict) -> dict | None:
    """The event dict for one OTLP span, or None when it is not a GenAI model call."""
    attributes = attributes_dict(span.attributes)
    if not is_genai_span(attributes):
        return None
    event = {}
    if span.trace_id and span.span_id:
        event["event_id"] = span.trace_id.hex() + span.span_id.hex()
    end = span.end_time_unix_nano or span.start_time_unix_nano
    if end:
        event["timestamp"] = _rfc3339(end)
    if span.start_time_unix_nano and span.end_time_unix_nano >= span.start_time_unix_nano:
        event["latency_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) // 1_000_000
    feature = _feature(attributes, resource_attributes)
    if feature is not None:
        event["feature"] = feature
    model = _first(attributes, MODEL_ATTRIBUTES)
    if model is not None:
        event["model"] = model
    provider = _first(attributes, PROVIDER_ATTRIBUTES)
    if isinstance(provider, str) and provider:
        event["provider"] = PROVIDERS.get(provider.lower(), provider.lower()[:50])
    event.update(_tokens(attributes))
    if attributes.get("gen_ai.operation.name") == "embeddings":
        event.setdefault("output_tokens", 0)  # embeddings produce no output tokens and report none
    cap = _first(attributes, CAP_ATTRIBUTES)
    if cap is not None:  # absent = cap unknown (cap_known_default=False), never "no cap"
        event["max_output_tokens"] = _token_count(cap)
    finish = _finish_reason(_first(attributes, FINISH_ATTRIBUTES))
    if finish:
        event["finish_reason"] = finish
    service_tier = _first(attributes, SERVICE_TIER_ATTRIBUTES)
    if service_tier in ("flex", "priority", "batch"):
        event["service_tier"] = service_tier
    if span.status.code == Status.STATUS_CODE_ERROR or attributes.get("error.type"):
        event["status"] = "error"
        event.setdefault("input_tokens", 0)  # a failed call that reported no usage cost nothing
        event.setdefault("output_tokens", 0)
    event.update(_costwatch_fields(attributes, resource_attributes))
    return event


def _span_label(span) -> str:
    return f"span {span.span_id.hex() or '?'} ({span.name or 'unnamed'})"


@dataclass
class SpanEvents:
    events: list = field(default_factory=list)
    labels: list = field(default_factory=list)  # the span each event came from, for error messages
    ignored: int = 0


def request_events(export_request) -> SpanEvents:
    """Every GenAI span of an ExportTraceServiceRequest as an event dict."""
    found = SpanEvents()
    for resource_spans in export_request.resource_spans:
        resource_attributes = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                event = span_event(span, resource_attributes=resource_attributes)
                if event is None:
                    found.ignored += 1
                    continue
                found.events.append(event)
                found.labels.append(_span_label(span))
    return found

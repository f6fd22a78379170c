"""OTLP/HTTP trace ingest (SPEC 2 "OTLP"): spans with GenAI attributes become usage events.

`POST /v1/traces` takes an `ExportTraceServiceRequest` as protobuf or OTLP JSON (optionally
gzip/deflate), authenticated by the same Bearer ingest key as the events API. Each GenAI
model-call span becomes one event dict that goes through the same `event_batch_ingest` as
`POST /api/v1/events` (with `cap_known_default=False`: a span without
`gen_ai.request.max_tokens` is "cap unknown", not "no cap"). Spans without GenAI attributes
are ignored and counted; rejected spans are reported in OTLP `partial_success`, and the
response uses the request's encoding.

Three layers, each usable alone: `span_event()` (pure: one span -> event dict),
`otlp_traces_ingest()` (the service) and `OtlpTracesView` (HTTP).
"""

import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from costwatch.api import MAX_JSON_DEPTH, api_error, json_too_deep, request_project
from costwatch.projects.auth import ApiKeyAuthentication, HasIngestScope

from .bodies import BodyError, body_read, media_type
from .event_fields import MAX_BATCH_EVENTS
from .ratelimit import ingest_rate_take
from .services import event_batch_ingest

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # after decompression; spans may carry prompt content
DB_RETRY_AFTER_SECONDS = 5
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPE = "application/json"

# --- span -> event (pure) ------------------------------------------------------------------
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


MAX_SPANS_PER_REQUEST = 10_000


def span_count_check(export_request) -> None:
    """More than MAX_SPANS_PER_REQUEST spans in one export is a 400 and nothing is stored: the work
    of a request stays bounded (the 16 MB body limit alone lets through hundreds of thousands)."""
    spans = sum(len(scope_spans.spans) for resource_spans in export_request.resource_spans
                for scope_spans in resource_spans.scope_spans)
    if spans > MAX_SPANS_PER_REQUEST:
        raise BodyError(400, "too_many_spans",
                        f"one request carries at most {MAX_SPANS_PER_REQUEST} spans, this one {spans}; "
                        "export smaller batches (e.g. BatchSpanProcessor's max_export_batch_size)",
                        field="resourceSpans")


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


# --- service -------------------------------------------------------------------------------
@dataclass
class OtlpResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    ignored: int = 0
    errors: list = field(default_factory=list)  # ERR dicts; index = the event's position in the request

    def error_message(self, limit: int = 5) -> str:
        parts = [f"{e['span']}: {e['field'] or 'span'} {e['code']}: {e['message']}" for e in self.errors[:limit]]
        more = len(self.errors) - limit
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def otlp_traces_ingest(*, project, export_request, received_at=None) -> OtlpResult:
    """Store the GenAI spans of one export request as events; count the others as ignored."""
    return span_events_ingest(project=project, found=request_events(export_request), received_at=received_at)


def span_events_ingest(*, project, found: SpanEvents, received_at=None) -> OtlpResult:
    """Store already converted spans through the events API's service, in batches of 1000."""
    result = OtlpResult(ignored=found.ignored)
    for start in range(0, len(found.events), MAX_BATCH_EVENTS):
        batch = event_batch_ingest(project=project, events=found.events[start:start + MAX_BATCH_EVENTS],
                                   received_at=received_at, cap_known_default=False)
        result.accepted += batch.accepted
        result.duplicates += batch.duplicates
        result.rejected += batch.rejected
        for error in batch.errors:
            index = start + error["index"]
            result.errors.append({**error, "index": index, "span": found.labels[index]})
    return result


# --- HTTP ----------------------------------------------------------------------------------
# HTTP status -> google.rpc.Code, for the Status body OTLP wants on protobuf errors.
RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def rpc_status_bytes(code: int, message: str) -> bytes:
    """A google.rpc.Status {code, message} in protobuf wire format (two fields; no dependency
    on googleapis-common-protos just for this)."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def max_body_bytes() -> int:
    return int(getattr(settings, "OTLP_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def read_body(django_request) -> bytes:
    """The request body, inflated (gzip or deflate), refusing more than the limit at every stage."""
    limit = max_body_bytes()
    return body_read(django_request, limit=limit, compressed_limit=limit, encodings=("gzip", "deflate"))


def _hex_ids_to_base64(document):
    """OTLP JSON writes trace/span ids as hex; protobuf's JSON mapping expects base64 bytes."""
    for resource_spans in document.get("resourceSpans") or document.get("resource_spans") or []:
        for scope_spans in resource_spans.get("scopeSpans") or resource_spans.get("scope_spans") or []:
            for span in scope_spans.get("spans") or []:
                for item in [span, *(span.get("links") or [])]:
                    for key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
                        value = item.get(key)
                        if isinstance(value, str) and value:
                            try:
                                item[key] = base64.b64encode(bytes.fromhex(value)).decode()
                            except ValueError:
                                pass  # not hex: leave it for the protobuf parser to judge
    return document


def decode_request(body: bytes, *, json_body: bool) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    if not json_body:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise BodyError(400, "parse_error", f"the body is not an ExportTraceServiceRequest: {exc}") from exc
        return message
    if json_too_deep(body):
        raise BodyError(400, "too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = json.loads(body or b"{}")
    except ValueError as exc:  # UnicodeDecodeError (not UTF-8) included
        raise BodyError(400, "parse_error", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BodyError(400, "parse_error", "the body must be an OTLP JSON object {\"resourceSpans\": [...]}")
    try:
        json_format.ParseDict(_hex_ids_to_base64(document), message, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, AttributeError, TypeError) as exc:
        raise BodyError(400, "parse_error", f"the body is not an OTLP JSON trace export: {exc}") from exc
    return message


class _AlwaysJson(DefaultContentNegotiation):
    """Exporters may send `Accept: application/x-protobuf`; the body is encoded by hand anyway."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


class OtlpTracesView(APIView):
    """`POST /v1/traces`: OTLP/HTTP trace export, Bearer key with the ingest scope."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasIngestScope]
    content_negotiation_class = _AlwaysJson
    schema = None  # OTLP's own protocol, documented in docs/sending-events.md, not in the v1 schema

    def post(self, request):
        project = request_project(request)
        content_type = media_type(request.content_type)
        if content_type not in (*PROTOBUF_TYPES, JSON_TYPE):
            raise BodyError(415, "unsupported_media_type",
                            "Content-Type must be application/x-protobuf or application/json")
        export_request = decode_request(read_body(request._request), json_body=content_type == JSON_TYPE)
        span_count_check(export_request)
        found = request_events(export_request)
        if found.events:
            self._rate_limit(project, events=len(found.events))
        result = span_events_ingest(project=project, found=found)
        if result.rejected:
            logger.info("otlp project=%s accepted=%d duplicates=%d rejected=%d ignored=%d", project.slug,
                        result.accepted, result.duplicates, result.rejected, result.ignored)
        return self._export_response(request, result)

    def _rate_limit(self, project, *, events: int):
        # The events API's bucket: a GenAI span costs what an event costs; ignored spans are free.
        verdict = ingest_rate_take(project=project, events=events)
        if not verdict.allowed:
            raise BodyError(verdict.status_code, verdict.code, verdict.message,
                            headers={"Retry-After": str(verdict.retry_after)})

    def _export_response(self, request, result: OtlpResult) -> HttpResponse:
        message = ExportTraceServiceResponse()
        if result.rejected:
            message.partial_success.rejected_spans = result.rejected
            message.partial_success.error_message = result.error_message()
        if media_type(request.content_type) == JSON_TYPE:
            response = HttpResponse(json_format.MessageToJson(message, indent=None), content_type=JSON_TYPE)
        else:
            response = HttpResponse(message.SerializeToString(), content_type=PROTOBUF_TYPES[0])
        response["X-Costwatch-Accepted"] = str(result.accepted)
        response["X-Costwatch-Duplicates"] = str(result.duplicates)
        response["X-Costwatch-Rejected"] = str(result.rejected)
        response["X-Costwatch-Ignored-Spans"] = str(result.ignored)
        return response

    def handle_exception(self, exc):
        """Errors as `{"errors": [...]}` for JSON requests and as a google.rpc.Status for
        protobuf ones (what OTLP exporters expect), with the same status codes."""
        if isinstance(exc, (OperationalError, InterfaceError)):
            exc = BodyError(503, "database_unavailable", "the database is unreachable; retry later",
                            headers={"Retry-After": str(DB_RETRY_AFTER_SECONDS)})
        if isinstance(exc, BodyError):
            response = Response({"errors": [api_error(exc.field, exc.code, exc.message)]}, status=exc.status_code,
                                headers=exc.headers)
        else:
            response = super().handle_exception(exc)
        if media_type(self.request.content_type) in PROTOBUF_TYPES and response.status_code >= 400:
            return self._protobuf_error(response)
        return response

    def _protobuf_error(self, response) -> HttpResponse:
        errors = (response.data or {}).get("errors") or [{}]
        message = errors[0].get("message") or "request failed"
        body = rpc_status_bytes(RPC_CODES.get(response.status_code, 2), str(message))
        protobuf = HttpResponse(body, status=response.status_code, content_type=PROTOBUF_TYPES[0])
        for header in ("Retry-After", "WWW-Authenticate"):
            if header in response:
                protobuf[header] = response[header]
        return protobuf


__all__ = ["OtlpTracesView", "otlp_traces_ingest", "request_events", "span_event"]

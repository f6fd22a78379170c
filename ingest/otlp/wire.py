"""OTLP/HTTP on the wire: the request body (protobuf or OTLP JSON, gzip or deflate, bounded), the
span limit, and the google.rpc.Status body of a protobuf error."""

import base64
import binascii
import json

from django.conf import settings
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costwatch.api import MAX_JSON_DEPTH, json_too_deep

from ..bodies import BodyError, body_read

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # after decompression; spans may carry prompt content
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPE = "application/json"
# HTTP status -> google.rpc.Code, for the Status body OTLP wants on protobuf errors.
RPC_CODES = {400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED, 403: code_pb2.PERMISSION_DENIED,
             404: code_pb2.NOT_FOUND, 413: code_pb2.RESOURCE_EXHAUSTED, 415: code_pb2.INVALID_ARGUMENT,
             429: code_pb2.RESOURCE_EXHAUSTED, 503: code_pb2.UNAVAILABLE}


def rpc_status_bytes(http_status: int, message: str) -> bytes:
    """The google.rpc.Status {code, message} of an HTTP error status, serialized."""
    code = RPC_CODES.get(http_status, code_pb2.UNKNOWN)
    return status_pb2.Status(code=code, message=message).SerializeToString()


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

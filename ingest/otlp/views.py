"""`POST /v1/traces`: the OTLP/HTTP trace receiver (see docs/sending-events.md#4-opentelemetry)."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from costwatch.api import api_error, request_project
from costwatch.projects.auth import ApiKeyAuthentication, HasIngestScope

from ..bodies import BodyError, media_type
from ..ratelimit import ingest_rate_take
from .mapping import request_events
from .service import OtlpResult, span_events_ingest
from .wire import JSON_TYPE, PROTOBUF_TYPES, decode_request, read_body, rpc_status_bytes, span_count_check

logger = logging.getLogger(__name__)

DB_RETRY_AFTER_SECONDS = 5


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
        body = rpc_status_bytes(response.status_code, str(message))
        protobuf = HttpResponse(body, status=response.status_code, content_type=PROTOBUF_TYPES[0])
        for header in ("Retry-After", "WWW-Authenticate"):
            if header in response:
                protobuf[header] = response[header]
        return protobuf

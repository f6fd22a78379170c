"""Events API v1 (`POST /api/v1/events`) and the prices API (`GET/POST /api/v1/prices`).

The batch views (events, scores) read the raw body themselves (gzip, the 5 MB limit after
decompression) and parse it once with msgspec; per-event validation is `ingest.decoding` and the error-reporting
`ingest.validation`, both built from `ingest.event_fields`, never a DRF serializer per event. The
serializers of `ingest.schema` describe the shapes for the OpenAPI schema only.
"""

from collections.abc import Callable

import msgspec
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from costwatch.api import (
    MAX_JSON_DEPTH,
    CreatedCursorPagination,
    api_error,
    error_response,
    json_too_deep,
    request_project,
)
from costwatch.metrics.definitions import isoformat_z
from costwatch.openapi import AnyOf, ErrorsSerializer
from costwatch.projects.auth import HasIngestScope, HasManageScope, request_api_key, scope_permission

from . import schema
from .bodies import BodyError, body_read, media_type
from .catalogue import price_as_dict, price_create
from .decoding import batch_decode_strict
from .event_fields import MAX_BATCH_EVENTS
from .ratelimit import ingest_rate_take
from .scores import MAX_BATCH_SCORES, score_batch_apply
from .selectors import prices_in_effect
from .services import event_batch_ingest, event_batch_ingest_json

MAX_BODY_BYTES = 5 * 1024 * 1024
_decode_json = msgspec.json.Decoder().decode


def _is_json(content_type: str) -> bool:
    media = media_type(content_type)
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _parse_json(body: bytes, shape: str):
    if not body.strip():
        raise BodyError(400, "parse_error", f"the body is empty; send {shape}")
    if json_too_deep(body):
        raise BodyError(400, "too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = _decode_json(body)
    except UnicodeDecodeError as exc:
        raise BodyError(400, "not_utf8", f"the body is not UTF-8 (byte {exc.start})") from None
    except msgspec.DecodeError as exc:
        raise BodyError(400, "parse_error", f"the body is not valid JSON: {exc}") from exc
    return document


def _batch_parse(body: bytes, noun: str, most: int) -> list:
    """The list of a batch body {"<noun>s": [...]} (1 to `most` items), else BodyError naming the field."""
    key = f"{noun}s"
    document = _parse_json(body, f"{{\"{key}\": [...]}}")
    if type(document) is not dict or key not in document:
        raise BodyError(400, "required", f"the body must be an object {{\"{key}\": [...]}}", field=key)
    items = document[key]
    if type(items) is not list:
        raise BodyError(400, "type", f"must be a list of {noun} objects", field=key)
    if not items:
        raise BodyError(400, "min_length", f"must hold at least 1 {noun}", field=key)
    if len(items) > most:
        raise BodyError(400, "max_length", f"must hold at most {most} {key}; split the batch", field=key)
    return items


PROJECT_PARAM = OpenApiParameter("project", str, required=False,
                                 description="Project slug; only for logged-in sessions (a key knows its project).")


def _json_body(request) -> bytes:
    """The request's JSON body read within the limits, else BodyError (415 for another Content-Type).
    A gzip body of JSON this large cannot inflate to <= 5 MB usefully: it is cut at 20 MB."""
    if not _is_json(request.content_type):
        raise BodyError(415, "unsupported_media_type", "Content-Type must be application/json")
    return body_read(request._request, limit=MAX_BODY_BYTES, compressed_limit=4 * MAX_BODY_BYTES)


def _batch_schema(noun: str, *, most: int, summary: str, request, result, stored: str, forbidden: str,
                  limited: str, description: str, examples):
    """The OpenAPI of a batch POST (events, scores): the answers both share, documented once."""
    responses = {
        200: OpenApiResponse(result, description=stored),
        207: OpenApiResponse(result, description=f"Some {noun}s rejected (see errors), the others stored."),
        400: OpenApiResponse(AnyOf((result, ErrorsSerializer)),
                             description=f"Every {noun} rejected (the result, with counts), or the request itself "
                                         f"refused (the body is not {{\"{noun}s\": [...]}}: errors only)."),
        413: OpenApiResponse(ErrorsSerializer, description="Body over 5 MB (after decompression)."),
        403: OpenApiResponse(ErrorsSerializer, description=forbidden),
        429: OpenApiResponse(ErrorsSerializer, description=limited),
    }
    return extend_schema(operation_id=f"{noun}s_ingest", summary=f"{summary} (1 to {most} per batch)",
                         description=description, request=request, parameters=[PROJECT_PARAM],
                         responses=responses, examples=examples, tags=["events"])


def _batch_status(result) -> int:
    """200 nothing rejected; 207 some rejected and some stored (or duplicates); 400 every item rejected."""
    if not result.rejected:
        return status.HTTP_200_OK
    kept = result.accepted or getattr(result, "duplicates", 0)
    return status.HTTP_207_MULTI_STATUS if kept else status.HTTP_400_BAD_REQUEST


def _rate_refusal(project, items: int):
    """None when the project's bucket has `items` events' worth of tokens, else the 429 (or 503)."""
    verdict = ingest_rate_take(project=project, events=items)
    if verdict.allowed:
        return None
    return error_response([api_error(None, verdict.code, verdict.message)], status_code=verdict.status_code,
                          headers={"Retry-After": str(verdict.retry_after)})


class BatchView(APIView):
    """A POST of a batch of items into the project of the ingest key (or of a session's ?project=):
    the body read within the limits and parsed by `parse` (the items and how to store them), the
    rate limit charged one event per item, then 200 / 207 / 400 by what was kept. Each subclass
    documents its `post` with `extend_schema_view(post=_batch_schema(...))`."""

    permission_classes = [HasIngestScope]
    parser_classes = [JSONParser]  # documents the media type; the body is read and parsed by the view

    def parse(self, body: bytes) -> tuple[list, Callable]:
        raise NotImplementedError

    def post(self, request):
        project = request_project(request)
        try:
            items, store = self.parse(_json_body(request))
        except BodyError as exc:
            return error_response([api_error(exc.field, exc.code, exc.message)], status_code=exc.status_code)
        refused = _rate_refusal(project, len(items))
        if refused is not None:
            return refused
        result = store(project)
        return Response(result.as_response(), status=_batch_status(result))


@extend_schema_view(post=_batch_schema(
    "event", most=MAX_BATCH_EVENTS, summary="Send usage events", description=schema.EVENTS_DESCRIPTION,
    request=schema.EventBatchSerializer, result=schema.IngestResultSerializer, examples=schema.EVENTS_EXAMPLES,
    stored="Every event stored or a duplicate.", forbidden="The key lacks the ingest scope.",
    limited="Over the project's rate limit; see Retry-After."))
class EventsView(BatchView):
    def parse(self, body):
        strict = batch_decode_strict(body)  # the common case, decoded and typed in C
        if strict is not None:
            return strict, lambda project: event_batch_ingest_json(project=project, events=strict, body=body)
        events = _batch_parse(body, "event", MAX_BATCH_EVENTS)  # to report each bad event's fields
        return events, lambda project: event_batch_ingest(project=project, events=events)


@extend_schema_view(post=_batch_schema(
    "score", most=MAX_BATCH_SCORES, summary="Attach late quality scores to stored events",
    description=schema.SCORES_DESCRIPTION, request=schema.ScoreBatchSerializer,
    result=schema.ScoresResultSerializer, examples=schema.SCORES_EXAMPLES, stored="Every score stored.",
    forbidden="The key lacks the ingest scope, or the session user is not an admin of the project.",
    limited="Over the project's ingest rate limit (each score counts as one event); see Retry-After."))
class ScoresView(BatchView):
    def parse(self, body):
        scores = _batch_parse(body, "score", MAX_BATCH_SCORES)
        return scores, lambda project: score_batch_apply(project=project, scores=scores)


HasReadOrManageScope = scope_permission("read", "manage")


def recompute_as_dict(recompute):
    if recompute is None:
        return None
    return {"id": recompute.pk, "state": recompute.state, "models": recompute.models_matched,
            "since": isoformat_z(recompute.since)}


def validation_errors(exc: DjangoValidationError):
    return [api_error(field, error.code or "invalid", error.messages[0])
            for field, errors in exc.error_dict.items() for error in errors]


class PricesView(APIView):
    pagination_class = CreatedCursorPagination

    def get_permissions(self):
        return [HasManageScope()] if self.request.method == "POST" else [HasReadOrManageScope()]

    @extend_schema(
        operation_id="prices_list",
        summary="Prices in effect for the project (its overrides and the global catalogue, marked by scope)",
        parameters=[OpenApiParameter("history", bool, description="Every period, not only the ones in force."),
                    PROJECT_PARAM],
        responses={200: schema.PriceSerializer(many=True)},
        tags=["prices"],
    )
    def get(self, request):
        project = request_project(request)
        history = request.query_params.get("history", "").lower() in ("1", "true", "yes")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(prices_in_effect(project=project, include_history=history),
                                           request, view=self)
        return paginator.get_paginated_response([price_as_dict(price) for price in page])

    @extend_schema(
        operation_id="prices_create",
        summary="Add a project price override (a new period; history is kept) and queue the recompute",
        request=schema.PriceInputSerializer,
        parameters=[PROJECT_PARAM],
        responses={201: schema.PriceCreatedSerializer},
        examples=schema.PRICE_EXAMPLES,
        tags=["prices"],
    )
    def post(self, request):
        project = request_project(request)
        serializer = schema.PriceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        actor = None if request_api_key(request) else request.user
        try:
            change = price_create(project=project, values=dict(serializer.validated_data), actor=actor,
                                  actor_label=request.user.get_username())
        except DjangoValidationError as exc:
            return error_response(validation_errors(exc))
        return Response({"price": price_as_dict(change.price), "recompute": recompute_as_dict(change.recompute)},
                        status=status.HTTP_201_CREATED)

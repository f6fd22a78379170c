"""The OpenAPI contract's common parts, in one place.

Every API operation can answer errors that no view states on its own: a bad parameter or
body (400), no key (401), a missing scope or role (403), an unknown project or object (404),
a body that is not JSON (415) and an unreachable database (503). `ContractSchema` adds each
of them, as the `{"errors": [...]}` envelope, to every operation that can answer it, so a
schema-driven client or fuzzer meets no undocumented status. A view states only what is
particular to it (the events endpoint's 207, 413 and 429, the ack's 409). Every 429 and 503
documents its `Retry-After` header (docs/security.md#killed-workers-and-outages).
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS


class ErrorSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="The body field or query parameter at fault; "
                                                              "null when none is (e.g. a bad key).")
    code = serializers.CharField(help_text="Stable, machine-readable: min_value, required, not_found, ...")
    message = serializers.CharField()
    index = serializers.IntegerField(required=False, help_text="An event's position in the batch.")
    event_id = serializers.CharField(required=False, allow_null=True, help_text="The event's id, if it had one.")

    class Meta:
        ref_name = "Error"


class ErrorsSerializer(serializers.Serializer):
    """The one error envelope of the API."""

    errors = ErrorSerializer(many=True)

    class Meta:
        ref_name = "Errors"


class AnyOf(tuple):
    """A response body that is one of several serializers: `AnyOf((IngestResult, Errors))`."""


ERROR_DESCRIPTIONS = {
    400: "A parameter or the body is invalid; each error's `field` names it.",
    401: "Missing, unknown or revoked API key (send `Authorization: Bearer <key>`).",
    403: "The key lacks the scope this operation needs, or the session user the role.",
    404: "No such project (`?project=`), object or path.",
    415: "The body is not `application/json`.",
    503: "The database is unreachable; retry after `Retry-After` seconds.",
}
BODY_METHODS = {"POST", "PUT", "PATCH"}

# Every answer "come back later" says when: the rate limit's wait, or a few seconds for the database.
RETRY_AFTER = OpenApiParameter(
    "Retry-After", type=int, location=OpenApiParameter.HEADER, response=[429, 503], required=True,
    description="Whole seconds to wait before sending the request again.")


class ContractSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the error responses every operation can answer."""

    def error_statuses(self) -> list[int]:
        statuses = [400, 401]
        scoped = any(getattr(permission, "scopes", None) for permission in self.view.get_permissions())
        if scoped or self.method not in SAFE_METHODS:
            statuses.append(403)
        if getattr(self.view, "project_scoped", True) or "{" in self.path:
            statuses.append(404)
        if self.method in BODY_METHODS and self.get_request_serializer() is not None:
            statuses.append(415)
        return [*statuses, 503]

    def get_override_parameters(self):
        return [*super().get_override_parameters(), RETRY_AFTER]

    def _get_pagination_parameters(self):
        # Our paged lists answer {"results", "next"} built by hand, which spectacular does not
        # recognise as a list view: any GET of a view with a paginator takes `cursor` and `limit`.
        paginator = self._get_paginator()
        if self.method == "GET" and paginator is not None:
            return paginator.get_schema_operation_parameters(self.view)
        return []

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status in self.error_statuses():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    OpenApiResponse(ErrorsSerializer, description=ERROR_DESCRIPTIONS[status]), str(status))
        return dict(sorted(responses.items()))

    def _get_response_for_code(self, serializer, status_code, media_types=None, direction="response"):
        response = serializer.response if isinstance(serializer, OpenApiResponse) else serializer
        if isinstance(response, AnyOf):
            schema = {"anyOf": [self.resolve_serializer(force_instance(one), direction).ref for one in response]}
            description = serializer.description if isinstance(serializer, OpenApiResponse) else ""
            serializer = OpenApiResponse(schema, description=description)
        return super()._get_response_for_code(serializer, status_code, media_types, direction)

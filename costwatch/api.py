"""Shared API plumbing: the `{"errors": [...]}` shape, the request's project, pagination."""

import re

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.utils import json
from rest_framework.views import exception_handler as drf_exception_handler

from costwatch.errors import api_error
from costwatch.projects.selectors import project_for_user, user_is_project_admin

DB_RETRY_AFTER_SECONDS = 5


def error_response(errors, status_code=status.HTTP_400_BAD_REQUEST, headers=None):
    return Response({"errors": list(errors)}, status=status_code, headers=headers)


def errors_flatten(detail, field=None):
    """DRF's nested error detail -> flat ERR dicts with a dotted field name."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "detail") else (f"{field}.{key}" if field else str(key))
            yield from errors_flatten(value, name)
    elif isinstance(detail, list):
        for item in detail:
            yield from errors_flatten(item, field)
    else:
        code = getattr(detail, "code", None) or "invalid"
        yield api_error(field, code, str(detail))


def exception_handler(exc, context):
    if isinstance(exc, (OperationalError, InterfaceError)):
        # PostgreSQL unreachable (restarting, failing over): clients back off and retry.
        return error_response(
            [api_error(None, "database_unavailable", "the database is unreachable; retry later")],
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(DB_RETRY_AFTER_SECONDS)})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = list(errors_flatten(exc.detail))
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        errors = [api_error(None, getattr(detail, "code", None) or exc.default_code, str(detail))]
    response.data = {"errors": errors}
    return response


def request_project(request):
    """The project an API call acts on: the key's own, or `?project=<slug>` for a logged-in user.

    Roles hold on every path, here in one place: a session writes (POST, PATCH, DELETE) only
    as an admin of the project; a viewer reads. A key's scopes are checked by its permission class."""
    api_key = getattr(request.user, "api_key", None)
    if api_key is not None:
        return api_key.project
    slug = request.query_params.get("project")
    if not slug:
        raise exceptions.ValidationError({"project": ["required for session requests: ?project=<slug>"]})
    project = project_for_user(user=request.user, slug=slug)
    if request.method not in SAFE_METHODS and not user_is_project_admin(user=request.user, project=project):
        raise exceptions.PermissionDenied("only admins of this project write through the API; viewers read")
    return project


@csrf_exempt  # like every API view: no session form posts here, and a 404 must not turn into a CSRF 403
def api_not_found(request, path=""):
    """Any path under /api/v1/ that names no operation (or an id that is not one): the envelope, not HTML."""
    return JsonResponse({"errors": [api_error(None, "not_found", f"no API operation at {request.path}")]},
                        status=404)


class CreatedCursorPagination(CursorPagination):
    page_size = 50
    ordering = "-id"
    page_size_query_param = "limit"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            # A cursor is a parameter like any other: a bad one is a 400 naming it, not a 404.
            raise exceptions.ValidationError({self.cursor_query_param: [
                "invalid cursor; use the `next` link of the previous page"]}) from None


MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `body` nests arrays/objects deeper than `limit`, found without recursion (Python's
    and msgspec's decoders raise RecursionError at ~1000 levels): strings are cut out, then the
    brackets that remain are counted."""
    depth = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_A_BRACKET):
        if byte == 91 or byte == 123:  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with the events API's rules for bodies: not UTF-8 or nested deeper than
    MAX_JSON_DEPTH is a 400 in the envelope, never a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"the body is not UTF-8 (byte {exc.start})") from None
        if json_too_deep(body):
            raise exceptions.ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None

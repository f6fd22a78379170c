"""API authentication: `Authorization: Bearer cw_<id>_<secret>` and scope permissions."""

from rest_framework import authentication, exceptions, permissions

from .selectors import api_key_for_plaintext, last_used_resolution
from .services import api_key_touch


class ApiKeyUser:
    """The request.user for a key: authenticated, tied to one project, never staff."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.project = api_key.project

    def get_username(self):
        return f"key:{self.api_key.key_id}"

    def __str__(self):
        return self.get_username()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not token.strip():
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer cw_<key id>_<secret>'")
        api_key = api_key_for_plaintext(token.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("unknown or revoked API key")
        api_key_touch(api_key=api_key, resolution_seconds=last_used_resolution())
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request):
        return self.keyword


def request_api_key(request):
    user = getattr(request, "user", None)
    return getattr(user, "api_key", None)


class HasScope(permissions.BasePermission):
    """A key must carry one of `scopes`; a logged-in session passes (project access is checked by the view)."""

    scopes: tuple[str, ...] = ()
    message = "this API key lacks the required scope"

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        api_key = request_api_key(request)
        if api_key is None:
            return True
        if not any(api_key.has_scope(scope) for scope in self.scopes):
            self.message = f"this API key lacks the {' or '.join(repr(scope) for scope in self.scopes)} scope"
            return False
        return True


def scope_permission(*scopes: str):
    """A permission class requiring one of `scopes` on an API key (a session user passes)."""
    return type(f"Has{'Or'.join(scope.title() for scope in scopes)}Scope", (HasScope,), {"scopes": scopes})


HasIngestScope = scope_permission("ingest")
HasReadScope = scope_permission("read")
HasManageScope = scope_permission("manage")

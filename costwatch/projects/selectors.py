"""Reads for projects, members and API keys."""

from django.conf import settings
from django.db import connection
from django.http import Http404

from .models import ApiKey, Membership, Project
from .services import KEY_PATTERN


def api_key_for_plaintext(plaintext: str) -> ApiKey | None:
    """The active key matching `cw_<id>_<secret>`, compared in constant time; None otherwise."""
    match = KEY_PATTERN.match(plaintext or "")
    if not match:
        return None
    key_id, secret = match.groups()
    api_key = _active_key_with_project(key_id)
    if api_key is None or not api_key.secret_matches(secret):
        return None
    return api_key


_KEY_FIELDS, _PROJECT_FIELDS = list(ApiKey._meta.concrete_fields), list(Project._meta.concrete_fields)
# Every request with a key runs this: one hand-written SELECT, because building the same
# query through the ORM (select_related + first()) cost ~1 ms of CPU per request.
_ACTIVE_KEY_SQL = (
    f"SELECT {', '.join(f'k.{f.column}' for f in _KEY_FIELDS)}, {', '.join(f'p.{f.column}' for f in _PROJECT_FIELDS)} "
    f"FROM {ApiKey._meta.db_table} k JOIN {Project._meta.db_table} p ON p.id = k.project_id "
    f"WHERE k.key_id = %s AND k.revoked_at IS NULL"
)


def _active_key_with_project(key_id: str) -> ApiKey | None:
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_KEY_SQL, [key_id])
        row = cursor.fetchone()
    if row is None:
        return None
    key_values, project_values = row[:len(_KEY_FIELDS)], row[len(_KEY_FIELDS):]
    api_key = ApiKey.from_db(connection.alias, [f.attname for f in _KEY_FIELDS], _from_db(_KEY_FIELDS, key_values))
    api_key.project = Project.from_db(connection.alias, [f.attname for f in _PROJECT_FIELDS],
                                      _from_db(_PROJECT_FIELDS, project_values))
    return api_key


def _from_db(fields, values) -> list:
    """Values as the ORM would give them (JSON fields arrive as text and are parsed here)."""
    return [field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
            for field, value in zip(fields, values, strict=True)]


def projects_for_user(*, user):
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


def project_for_user(*, user, slug: str, admin: bool = False) -> Project:
    """The project if the user may see it (or administer it); a 404 otherwise, never a 403."""
    project = projects_for_user(user=user).filter(slug=slug).first()
    if project is None:
        raise Http404("No such project")
    if admin and not user_is_project_admin(user=user, project=project):
        raise Http404("No such project")
    return project


def user_is_project_admin(*, user, project) -> bool:
    if user.is_superuser:
        return True
    return Membership.objects.filter(project=project, user=user, role=Membership.ADMIN).exists()


def last_used_resolution() -> int:
    return settings.API_KEY_LAST_USED_RESOLUTION_SECONDS

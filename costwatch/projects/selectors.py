"""Reads for projects, members and API keys."""

from django.conf import settings
from django.http import Http404

from .models import ApiKey, Membership, Project
from .services import KEY_PATTERN


def api_key_for_plaintext(plaintext: str) -> ApiKey | None:
    """The active key matching `cw_<id>_<secret>`, compared in constant time; None otherwise."""
    match = KEY_PATTERN.match(plaintext or "")
    if not match:
        return None
    key_id, secret = match.groups()
    api_key = ApiKey.objects.select_related("project").filter(key_id=key_id, revoked_at__isnull=True).first()
    if api_key is None or not api_key.secret_matches(secret):
        return None
    return api_key


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


def project_by_slug_or_name(value: str) -> Project:
    """`--project` accepts a slug or a name everywhere."""
    project = Project.objects.filter(slug=value).first() or Project.objects.filter(name=value).first()
    if project is None:
        from django.core.management.base import CommandError

        known = ", ".join(Project.objects.values_list("slug", flat=True)[:20]) or "none yet"
        raise CommandError(f"--project: no project with slug or name {value!r} (known: {known})")
    return project


def last_used_resolution() -> int:
    return settings.API_KEY_LAST_USED_RESOLUTION_SECONDS

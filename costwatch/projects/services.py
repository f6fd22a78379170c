"""Writes for projects, members, API keys and the audit log."""

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from costwatch.metrics.services import project_mark_all_dirty

from .models import SCOPES, ApiKey, AuditLog, Membership, Project, hash_secret, validate_timezone

KEY_PATTERN = re.compile(r"^cw_([A-Za-z0-9]{4,24})_([A-Za-z0-9_-]{24,})$")


def audit_record(*, project, actor=None, actor_label="", action, target_type, target_id="", before=None, after=None):
    if actor is not None and not actor_label:
        actor_label = actor.get_username()
    return AuditLog.objects.create(
        project=project,
        actor=actor,
        actor_label=actor_label,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
    )


def project_create(*, name: str, slug: str = "", timezone_name: str = "UTC", owner=None) -> Project:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "must not be empty"})
    slug = slug or slugify(name)
    if not slug:
        raise ValidationError({"slug": f"cannot derive a URL-safe slug from {name!r}; pass one"})
    try:
        validate_timezone(timezone_name)
    except ValidationError as exc:
        raise ValidationError({"timezone": exc.messages}) from exc
    try:
        with transaction.atomic():
            project = Project.objects.create(name=name, slug=slug, timezone=timezone_name)
            if owner is not None:
                Membership.objects.create(project=project, user=owner, role=Membership.ADMIN)
            audit_record(project=project, actor=owner, actor_label=owner.get_username() if owner else "system",
                         action="create", target_type="project", target_id=project.slug,
                         after={"name": name, "slug": slug, "timezone": timezone_name})
    except IntegrityError as exc:
        raise ValidationError({"slug": f"a project named {name!r} or with slug {slug!r} already exists"}) from exc
    return project


def membership_set(*, project: Project, user, role: str, actor=None) -> Membership:
    if role not in dict(Membership.ROLES):
        raise ValidationError({"role": f"must be one of {', '.join(dict(Membership.ROLES))}"})
    membership, created = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    audit_record(project=project, actor=actor, actor_label=actor.get_username() if actor else "system",
                 action="add_member" if created else "change_member", target_type="membership",
                 target_id=user.get_username(), after={"role": role})
    return membership


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str  # shown once, never stored


def api_key_issue(*, project: Project, scopes, name: str = "", actor=None, actor_label: str = "") -> IssuedKey:
    scopes = sorted(set(scopes))
    if not scopes:
        raise ValidationError({"scopes": "at least one scope is required"})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationError({"scopes": f"unknown scope {unknown[0]!r}; use {', '.join(SCOPES)}"})
    secret = ApiKey.new_secret()
    api_key = ApiKey.objects.create(project=project, name=name, key_id=ApiKey.new_key_id(),
                                    secret_hash=hash_secret(secret), scopes=scopes, created_by=actor)
    audit_record(project=project, actor=actor, actor_label=actor_label, action="issue",
                 target_type="api_key", target_id=api_key.key_id, after={"scopes": scopes, "name": name})
    return IssuedKey(api_key=api_key, plaintext=f"cw_{api_key.key_id}_{secret}")


def api_key_revoke(*, api_key: ApiKey, actor=None, actor_label: str = "") -> bool:
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if revoked:
        audit_record(project=api_key.project, actor=actor, actor_label=actor_label, action="revoke",
                     target_type="api_key", target_id=api_key.key_id, before={"scopes": api_key.scopes})
    return bool(revoked)


def api_key_touch(*, api_key: ApiKey, resolution_seconds: int = 60) -> None:
    """Record use at most once per resolution: one conditional UPDATE, never a write per request."""
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=resolution_seconds)
    if api_key.last_used_at is not None and api_key.last_used_at >= stale:
        return  # as loaded with the key: fresh enough, no statement at all
    from django.db.models import Q

    ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=api_key.pk).update(
        last_used_at=now
    )


def user_get_or_create_admin(*, username: str, password: str, email: str = ""):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"email": email, "is_staff": True,
                                                                            "is_superuser": True})
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user, created


# Settings whose change alters what the rollups hold (cap classification, dimension rows, local days).
ROLLUP_SETTINGS = ("huge_cap_tokens", "dimensions", "timezone")
PROJECT_SETTINGS = ("timezone", "dimensions", "ingest_rate_limit", "huge_cap_tokens")


def project_settings_update(*, project, values: dict, actor) -> list[str]:
    """Apply the changed settings; when one that shapes the rollups changed, mark every hour
    with events dirty so the next refresh rebuilds them. Returns the names that changed."""
    changed = [name for name in PROJECT_SETTINGS if name in values and getattr(project, name) != values[name]]
    if not changed:
        return []
    before = {name: getattr(project, name) for name in changed}
    with transaction.atomic():
        for name in changed:
            setattr(project, name, values[name])
        project.full_clean()
        project.save(update_fields=changed)
        audit_record(project=project, actor=actor, action="update", target_type="project_settings",
                     target_id=project.slug, before=before, after={name: values[name] for name in changed})
        if any(name in ROLLUP_SETTINGS for name in changed):
            # A new timezone cuts days on other midnights: old-zone day rows must go, not linger.
            project_mark_all_dirty(project=project, drop_days="timezone" in changed)
    return changed

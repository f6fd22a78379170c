import hashlib
import hmac
import secrets
import string
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def validate_timezone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)")


class Project(models.Model):
    """One product or team. Every row of usage data belongs to exactly one project."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    ingest_rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Events per second; empty = the INGEST_RATE_LIMIT setting, 0 = off."
    )
    huge_cap_tokens = models.PositiveIntegerField(
        default=8192, help_text="A max-output cap at or above this counts as no cap."
    )
    dimensions = models.JSONField(
        default=list, blank=True, help_text="Up to 3 attribute keys with their own daily cost breakdown."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def tzinfo(self):
        return zoneinfo.ZoneInfo(self.timezone)

    def effective_rate_limit(self):
        return settings.INGEST_RATE_LIMIT if self.ingest_rate_limit is None else self.ingest_rate_limit


class Membership(models.Model):
    VIEWER = "viewer"
    ADMIN = "admin"
    ROLES = [(VIEWER, "Viewer"), (ADMIN, "Admin")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=ROLES, default=VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique")]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.project}"


KEY_ID_ALPHABET = string.ascii_letters + string.digits
SCOPES = ("ingest", "read", "manage")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    """`cw_<key_id>_<secret>`: looked up by key_id, secret kept only as its SHA-256."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    key_id = models.CharField(max_length=24, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"cw_{self.key_id}_… ({', '.join(self.scopes)})"

    @property
    def is_active(self):
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def secret_matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    @staticmethod
    def new_key_id() -> str:
        return "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(12))

    @staticmethod
    def new_secret() -> str:
        return secrets.token_urlsafe(32)


class AuditLog(models.Model):
    """Who changed which price, rule, channel, key or setting, and what it was before and after."""

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_log")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, blank=True, help_text="User name, key id or command.")
    action = models.CharField(max_length=50)
    target_type = models.CharField(max_length=50)
    target_id = models.CharField(max_length=100, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_type} {self.target_id}"

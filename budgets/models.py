"""Rules, alerts, channels and deliveries (docs/alerts.md).

An alert is keyed by (rule, scope[, period start, threshold level]); `Alert.key` is that
key as one string so a partial unique index can say "at most one alert per key that is not
resolved", which two concurrent rule cycles cannot get around. A notice (opened, reminder,
resolved) fans out to one Delivery row per channel; retries live in that row.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q

from costwatch.metrics.definitions import isoformat_z
from costwatch.projects.models import Project
from ingest.models import Feature

KIND_UNBOUNDED_OUTPUT = "unbounded_output"
KIND_PRO_DEFAULT = "pro_default"
KIND_SHARE_DRIFT = "share_drift"
KIND_ESCALATION_BAND = "escalation_band"
KIND_UNPRICED_TRAFFIC = "unpriced_traffic"
KIND_SPEND_SPIKE = "spend_spike"
KIND_SPEND_BUDGET = "spend_budget"
EVERY_VALUE = "*"  # a budget's dimension value meaning "each value separately"
RULE_KINDS = [
    (KIND_UNBOUNDED_OUTPUT, "Unbounded output"),
    (KIND_PRO_DEFAULT, "Pro by default"),
    (KIND_SHARE_DRIFT, "Pro share drift"),
    (KIND_ESCALATION_BAND, "Escalation rate out of band"),
    (KIND_UNPRICED_TRAFFIC, "Unpriced traffic"),
    (KIND_SPEND_SPIKE, "Spend spike"),
    (KIND_SPEND_BUDGET, "Spend budget"),
]
# Every kind but the opt-in budget exists for a project from its first event.
DEFAULT_KINDS = [k for k, _ in RULE_KINDS if k != KIND_SPEND_BUDGET]
FEATURE_KINDS = {KIND_UNBOUNDED_OUTPUT, KIND_PRO_DEFAULT, KIND_SHARE_DRIFT, KIND_ESCALATION_BAND, KIND_SPEND_SPIKE}


class Rule(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rules")
    kind = models.CharField(max_length=20, choices=RULE_KINDS)
    feature = models.ForeignKey(Feature, null=True, blank=True, on_delete=models.CASCADE, related_name="rules")
    awaited_feature = models.CharField(
        max_length=100, blank=True, default="",
        help_text="A feature named before its first event; the first rule cycle after that event binds `feature`.")
    model = models.CharField(max_length=200, blank=True, default="")
    tier = models.CharField(max_length=8, blank=True, default="")
    environment = models.CharField(max_length=50, null=True, blank=True, default="production",
                                   help_text="null = all environments.")
    dimension = models.JSONField(null=True, blank=True, help_text='One declared dimension value: {"customer": "acme"}, or "*" for each value separately.')
    params = models.JSONField(default=dict, blank=True)
    cooldown_hours = models.PositiveIntegerField(default=24)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, help_text="Created automatically for the project.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "id"]
        constraints = [
            # Lets the cycle create defaults idempotently (INSERT ... ON CONFLICT DO NOTHING).
            models.UniqueConstraint(fields=["project", "kind"], condition=Q(is_default=True), name="rule_one_default"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.scope_label()}"

    def scope(self) -> dict:
        scope = {}
        if self.feature_name:
            scope["feature"] = self.feature_name
        if self.model:
            scope["model"] = self.model
        if self.tier:
            scope["tier"] = self.tier
        if self.dimension:
            scope["dimension"] = self.dimension
        return scope

    @property
    def is_per_value(self) -> bool:
        """A budget on every value of a dimension ({"customer": "*"}), one alert per offending value."""
        return bool(self.dimension) and list(self.dimension.values()) == [EVERY_VALUE]

    @property
    def feature_name(self) -> str | None:
        """The feature this rule is scoped to, seen yet or not."""
        if self.feature_id:
            return self.feature.name
        return self.awaited_feature or None

    def scope_label(self) -> str:
        parts = [f"{k} {v}" for k, v in self.scope().items() if k != "dimension"]
        parts += [f"each {k}" if v == EVERY_VALUE else f"{k}={v}" for k, v in (self.dimension or {}).items()]
        env = self.environment or "all environments"
        return (", ".join(parts) or "whole project") + f" ({env})"


class Alert(models.Model):
    OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
    STATES = [(OPEN, "Open"), (ACKNOWLEDGED, "Acknowledged"), (RESOLVED, "Resolved")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alerts")
    rule = models.ForeignKey(Rule, null=True, on_delete=models.SET_NULL, related_name="alerts")
    kind = models.CharField(max_length=20, choices=RULE_KINDS)
    feature = models.ForeignKey(Feature, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    key = models.CharField(max_length=400, help_text="scope|period start|level: with rule, the alert's identity.")
    scope = models.JSONField(default=dict)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=STATES, default=OPEN)
    opened_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField()
    clear_since = models.DateTimeField(null=True, blank=True, help_text="First cycle that saw the condition clear.")
    last_notified_at = models.DateTimeField(help_text="Opened or last reminded: the reminder throttle.")
    numbers = models.JSONField(default=dict)
    message = models.TextField()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "key"], condition=~Q(state="resolved"),
                                    name="alert_one_unresolved_per_key"),
        ]
        indexes = [models.Index(fields=["project", "state"], name="alert_project_state")]

    def __str__(self):
        return f"{self.kind} {self.key} ({self.state})"

    @property
    def is_spend(self):
        return self.kind == KIND_SPEND_BUDGET

    @property
    def is_per_value(self) -> bool:
        """A budget on every value of a dimension ({"customer": "*"}), one alert per offending value."""
        return bool(self.dimension) and list(self.dimension.values()) == [EVERY_VALUE]

    @property
    def feature_name(self):
        return self.scope.get("feature")

    def url(self) -> str:
        base = f"{settings.SITE_URL}/p/{self.project.slug}"
        if self.feature_name:
            return f"{base}/features/{self.feature_name}/"
        return f"{base}/alerts/"

    def as_dict(self) -> dict:
        """The API shape of an alert, also the `alert` of a webhook body (docs/alerts.md#webhook)."""
        return {
            "id": self.pk, "kind": self.kind, "rule_id": self.rule_id, "feature": self.feature_name,
            "scope": self.scope, "level": self.level, "state": self.state,
            "opened_at": isoformat_z(self.opened_at), "acknowledged_at": isoformat_z(self.acknowledged_at),
            "resolved_at": isoformat_z(self.resolved_at),
            "numbers": self.numbers, "message": self.message, "url": self.url(),
        }


class Notice(models.Model):
    """One message about an alert (opened, reminder, resolved), sent to every matching channel."""

    OPENED, REMINDER, RESOLVED = "opened", "reminder", "resolved"
    TYPES = [(OPENED, "Opened"), (REMINDER, "Reminder"), (RESOLVED, "Resolved")]

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notices")
    type = models.CharField(max_length=10, choices=TYPES)
    created_at = models.DateTimeField()
    numbers = models.JSONField(default=dict, help_text="The numbers at the time of the notice.")
    message = models.TextField()

    class Meta:
        ordering = ["-created_at", "-id"]


class Channel(models.Model):
    EMAIL, SLACK, WEBHOOK = "email", "slack", "webhook"
    KINDS = [(EMAIL, "Email"), (SLACK, "Slack"), (WEBHOOK, "Webhook")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=10, choices=KINDS)
    name = models.CharField(max_length=100)
    target = models.TextField(help_text="Email addresses (comma-separated) or the webhook URL.")
    secret = models.CharField(max_length=200, blank=True, default="", help_text="Webhook signing secret.")
    rules = models.ManyToManyField(Rule, blank=True, related_name="channels",
                                   help_text="Empty = every alert of the project.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    test_requested_at = models.DateTimeField(null=True, blank=True, help_text="Test button pressed; sent by the worker.")
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return f"{self.name} ({self.kind})"

    @staticmethod
    def email_addresses(target: str) -> list[str]:
        """An email channel's target: one address or several separated by commas."""
        return [address.strip() for address in target.split(",") if address.strip()]

    @property
    def test_pending(self) -> bool:
        """The Test button was pressed and the worker has not reported back since."""
        return self.test_requested_at is not None and (self.last_test_at is None
                                                       or self.last_test_at < self.test_requested_at)

    def target_display(self) -> str:
        """Enough of the target to recognise it without showing a webhook's secret path."""
        if self.kind == self.EMAIL:
            return self.target
        return urlsplit(self.target).hostname or "(invalid URL)"  # the path of a webhook URL is its secret


class Delivery(models.Model):
    PENDING, SENT, FAILED = "pending", "sent", "failed"
    STATUSES = [(PENDING, "Pending"), (SENT, "Sent"), (FAILED, "Failed")]

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=8, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    permanent = models.BooleanField(default=False, help_text="Failed for good (a 4xx, a refused address).")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["notice", "channel"], name="delivery_one_per_channel")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due",
                                condition=Q(status="pending"))]


class DigestSent(models.Model):
    """One row per project and local day: the daily digest is sent once even with two workers."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sent_at = models.DateTimeField(null=True, blank=True, help_text="Empty while a worker holds the claim.")
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A claim not sent by then is taken over.")
    recipients = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "day"], name="digest_once_per_day")]


class ProjectRulesState(models.Model):
    """Marks that a project's default rules were created, so deleting one does not bring it back."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="+")
    defaults_created_at = models.DateTimeField()

"""Usage events and what ingest hands downstream (features, dirty hours).

The Event table is the contract with the rollups (costwatch.metrics): column names here
are relied upon by the rollup refresh SQL. Cost is exact NUMERIC, never float.
"""

from django.contrib.postgres.indexes import BrinIndex
from django.db import models

from costwatch.projects.models import Project

TIER_LITE, TIER_PRO, TIER_UNKNOWN = "lite", "pro", "unknown"
TIERS = [(TIER_LITE, "Lite"), (TIER_PRO, "Pro"), (TIER_UNKNOWN, "Unknown")]
ROLES = [("primary", "Primary"), ("triage", "Triage"), ("escalation", "Escalation"), ("shadow", "Shadow")]
SERVICE_TIERS = [("standard", "Standard"), ("batch", "Batch"), ("flex", "Flex"), ("priority", "Priority")]
STATUSES = [("ok", "ok"), ("error", "error")]

COST_CATALOGUE = "catalogue"  # a global price row matched
COST_OVERRIDE = "override"  # a project override matched
COST_CLIENT = "client"  # no price matched; the client's cost_usd was used
COST_SOURCES = [(COST_CATALOGUE, "Catalogue"), (COST_OVERRIDE, "Project override"), (COST_CLIENT, "Client")]

MONEY = {"max_digits": 20, "decimal_places": 12}


class Feature(models.Model):
    """The product feature that made a call; created on first sight."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="features")
    name = models.CharField(max_length=100)
    expected_pro_share = models.FloatField(null=True, blank=True)
    muted = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="feature_unique_name")]
        ordering = ["name"]

    def __str__(self):
        return self.name


class Event(models.Model):
    """One LLM call. Immutable once stored, except cost, tier and cost_source on re-pricing."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    event_id = models.CharField(max_length=128)
    ts = models.DateTimeField(help_text="The call's timestamp (UTC).")
    received_at = models.DateTimeField()
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, db_index=False)
    environment = models.CharField(max_length=50, default="production")
    model = models.CharField(max_length=200)
    provider = models.CharField(max_length=50, blank=True, default="")
    tier = models.CharField(max_length=8, choices=TIERS, default=TIER_UNKNOWN)
    client_tier = models.CharField(max_length=8, blank=True, default="", help_text="The event's own tier field.")
    role = models.CharField(max_length=12, choices=ROLES, default="primary")
    status = models.CharField(max_length=5, choices=STATUSES, default="ok")
    service_tier = models.CharField(max_length=10, choices=SERVICE_TIERS, default="standard")
    input_tokens = models.BigIntegerField()
    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField()
    reasoning_tokens = models.BigIntegerField(default=0)
    max_output_tokens = models.IntegerField(null=True, blank=True, help_text="null = no cap (when cap_known).")
    cap_known = models.BooleanField(default=True, help_text="False for OTLP spans without a cap attribute.")
    finish_reason = models.CharField(max_length=50, blank=True, default="")
    latency_ms = models.IntegerField(null=True, blank=True)
    ttft_ms = models.IntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, default="")
    parent_event_id = models.CharField(max_length=128, blank=True, default="")
    route_reason = models.CharField(max_length=50, blank=True, default="")
    confidence = models.FloatField(null=True, blank=True)
    quality = models.FloatField(null=True, blank=True)
    cost_usd = models.DecimalField(null=True, blank=True, **MONEY, help_text="null = unpriced.")
    client_cost_usd = models.DecimalField(null=True, blank=True, **MONEY, help_text="cost_usd as sent.")
    cost_source = models.CharField(max_length=10, choices=COST_SOURCES, blank=True, default="")
    price_id = models.BigIntegerField(null=True, blank=True, help_text="The price row that priced it.")
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            # Dedup: a repeat of (project, event_id) is never stored twice.
            models.UniqueConstraint(fields=["project", "event_id"], name="event_unique_project_event_id"),
        ]
        indexes = [
            BrinIndex(fields=["ts"], name="event_ts_brin", pages_per_range=32),
            # Recent calls of a feature (the one page that reads raw events) and rollup rebuilds.
            models.Index(fields=["project", "feature", "-ts"], name="event_feature_recent"),
            models.Index(fields=["project", "ts"], name="event_project_ts"),
        ]

    def __str__(self):
        return f"{self.event_id} {self.model} {self.ts:%Y-%m-%d %H:%M}"


class DirtyHour(models.Model):
    """Append-only marks 'this UTC hour of this project changed', written in the same
    transaction as the events (or a recompute) and claimed by the rollup refresh with
    DELETE ... RETURNING, so an event committed during a refresh is never missed."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    hour = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["project", "hour"], name="dirtyhour_project_hour")]

"""Usage events and what ingest hands downstream (features, dirty hours).

The Event table is the contract with the rollups (costwatch.metrics): column names here
are relied upon by the rollup refresh SQL. Cost is exact NUMERIC, never float.
"""

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.utils import timezone

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
    """One LLM call. Immutable once stored, except cost, tier and cost_source on re-pricing, and
    quality with its quality_source when a late score arrives."""

    id = models.BigAutoField(primary_key=True)
    # No database-level foreign keys on the hot table (measured: Django's deferred FK checks ran
    # 2000 trigger lookups at each 1000-event commit, ~25-30 ms, doubling the write against raw
    # COPY). The write path guarantees both: the project comes from the key, features are
    # upserted in the same transaction. Deletes still cascade through the ORM.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False, db_constraint=False)
    event_id = models.CharField(max_length=128)
    ts = models.DateTimeField(help_text="The call's timestamp (UTC).")
    received_at = models.DateTimeField()
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, db_index=False, db_constraint=False)
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
    quality_source = models.CharField(max_length=50, blank=True, default="", db_default="",
                                      help_text="Who gave the quality: a score's `source` (docs/savings.md#scores).")
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
            # The rollup refresh finds a project's new batches by id range: only its own rows.
            models.Index(fields=["project", "id"], name="event_project_id"),
            # The savings pairs' partner look-ups (docs/savings.md#evidence). Partial: they hold only
            # the few events that can be one side of a pair, so ingest barely pays for them.
            models.Index(fields=["project", "parent_event_id"], name="event_pair_parent",
                         condition=~models.Q(parent_event_id="")),
            models.Index(fields=["project", "request_id"], name="event_pair_pro_request",
                         condition=~models.Q(request_id="") & models.Q(role__in=["shadow", "escalation"])),
            models.Index(fields=["project", "request_id"], name="event_pair_lite_request",
                         condition=~models.Q(request_id="") & models.Q(role="primary", quality__isnull=False)),
        ]

    def __str__(self):
        return f"{self.event_id} {self.model} {self.ts:%Y-%m-%d %H:%M}"


class DirtyHour(models.Model):
    """Append-only marks 'this UTC hour of this project changed', written in the same
    transaction as the events (or a recompute) and claimed by the rollup refresh with
    DELETE ... RETURNING, so an event committed during a refresh is never missed.

    A mark written with new events carries `first_event_id`, a lower bound of their ids: the
    refresh adds those events to the rollups as a delta, finding them by id range and by the
    mark's own transaction id (the events' xmin). A mark without it (a recompute, a settings
    change) says the hour's stored events changed in place: the refresh rebuilds the hour. A
    mark with `scored_event_id` says one event got a quality score (which no rollup sums): the
    refresh re-pairs that event for the savings evidence and rebuilds nothing."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    hour = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    first_event_id = models.BigIntegerField(
        null=True, blank=True, help_text="New events at or above this id (null: rebuild the hour).")
    scored_event_id = models.BigIntegerField(
        null=True, blank=True, help_text="The row id of an event that got a score (re-pair it, rebuild nothing).")

    class Meta:
        indexes = [models.Index(fields=["project", "hour"], name="dirtyhour_project_hour")]


SERVICE_TIER_NAMES = [value for value, _ in SERVICE_TIERS]
PRICE_TIERS = [(TIER_LITE, "Lite"), (TIER_PRO, "Pro")]
PRICE = {"max_digits": 14, "decimal_places": 6}  # per 1M tokens; 6 places keep per-event cost exact at 12

# The API field names of a price (docs/ingest.md#prices), in display order.
PRICE_FIELDS = [
    "input_per_mtok", "cached_input_per_mtok", "cache_write_input_per_mtok", "output_per_mtok",
    "reasoning_output_per_mtok", "long_context_threshold", "long_context_input_per_mtok",
    "long_context_cached_input_per_mtok", "long_context_output_per_mtok",
]
PRICE_MONEY_FIELDS = [name for name in PRICE_FIELDS if name != "long_context_threshold"]


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def glob_literal_length(pattern: str) -> int:
    """How specific a glob is: its characters other than wildcards (longest wins)."""
    return sum(1 for char in pattern if char not in "*?[]")


class Price(models.Model):
    """One period of a price series. History is never overwritten: a new row starts a new period.

    A series is (project, model, provider, service_tier); the row in force at t is the one with
    the latest `effective_from <= t`. `project` null = the global catalogue, else an override.
    An override without input/output prices only overrides the tier.
    """

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="prices",
                                help_text="Empty = global catalogue; else a project override.")
    model = models.CharField(max_length=200, help_text="Exact model id, or a glob like gemini-*-flash-lite*.")
    is_glob = models.BooleanField(default=False, editable=False)
    provider = models.CharField(max_length=50, blank=True, default="", help_text="Empty = any provider.")
    service_tier = models.CharField(max_length=10, choices=SERVICE_TIERS, default="standard")
    tier = models.CharField(max_length=8, choices=PRICE_TIERS, blank=True, default="")
    input_per_mtok = models.DecimalField(null=True, blank=True, **PRICE)
    cached_input_per_mtok = models.DecimalField(null=True, blank=True, **PRICE)
    cache_write_input_per_mtok = models.DecimalField(null=True, blank=True, **PRICE)
    output_per_mtok = models.DecimalField(null=True, blank=True, **PRICE)
    reasoning_output_per_mtok = models.DecimalField(null=True, blank=True, **PRICE)
    long_context_threshold = models.PositiveIntegerField(null=True, blank=True,
                                                         help_text="Input tokens above which long-context prices apply.")
    long_context_input_per_mtok = models.DecimalField(null=True, blank=True, **PRICE)
    long_context_cached_input_per_mtok = models.DecimalField(null=True, blank=True, **PRICE)
    long_context_output_per_mtok = models.DecimalField(null=True, blank=True, **PRICE)
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True, default="")
    note = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["model", "provider", "service_tier", "-effective_from"]
        indexes = [models.Index(fields=["model", "effective_from"], name="price_model_effective")]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "model", "provider", "service_tier", "effective_from"],
                name="price_unique_period", nulls_distinct=False,
            ),
        ]

    def __str__(self):
        scope = self.project.slug if self.project_id else "global"
        return f"{self.model} [{self.provider or 'any'}/{self.service_tier}] {scope} from {self.effective_from:%Y-%m-%d}"

    def save(self, *args, **kwargs):
        self.is_glob = is_glob(self.model)
        super().save(*args, **kwargs)

    @property
    def has_prices(self) -> bool:
        return self.input_per_mtok is not None and self.output_per_mtok is not None


class SeenModel(models.Model):
    """Model ids seen in a project's events: for glob tie checks and recompute targeting
    without scanning the events table."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    model = models.CharField(max_length=200)
    first_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "model"], name="seenmodel_unique")]


class RateBucket(models.Model):
    """The PostgreSQL token bucket of a project's ingest rate limit (when Redis is not configured)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True)
    tokens = models.FloatField()
    updated_at = models.DateTimeField()


class PriceRecompute(models.Model):
    """A queued re-pricing of past events after a price change."""

    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATES = [(QUEUED, "Queued"), (RUNNING, "Running"), (DONE, "Done"), (FAILED, "Failed")]

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE,
                                help_text="Empty = every project (a global price changed).")
    models_matched = models.JSONField(default=list, help_text="Model ids to recompute; empty = all.")
    since = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=STATES, default=QUEUED)
    events_changed = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True,
                                       help_text="While RUNNING: the worker's claim ends here unless renewed.")
    attempts = models.PositiveIntegerField(default=0, help_text="Claims so far (more than 1: a worker died).")

    class Meta:
        ordering = ["-created_at"]


class PriceImport(models.Model):
    """One run of an import of a LiteLLM-format price file into the global catalogue (the daily
    PRICES_SOURCE import or `manage.py import_prices`): what it added and changed, or why it failed."""

    OK, FAILED = "ok", "failed"
    STATUSES = [(OK, "OK"), (FAILED, "Failed")]

    source = models.TextField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=STATUSES)
    error = models.TextField(blank=True, default="", help_text="Why nothing was imported (a failed run).")
    added = models.JSONField(default=list, help_text="Price series new to the catalogue (from 2000-01-01).")
    changed = models.JSONField(default=list, help_text="Series with a new period from the import time.")
    unchanged_count = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=list, help_text="[label, reason] of rows not imported.")
    repriced_models = models.JSONField(default=list, help_text="Models that gained their first price.")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"{self.source} at {self.started_at:%Y-%m-%d %H:%M} ({self.status})"

"""Rollups: what every page, read API call and rule reads instead of raw events.

Histograms are fixed log buckets (see costwatch.metrics.buckets) stored as integer arrays
of counts, so they add up across hours and days. Every table leads with project_id.
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models

from costwatch.projects.models import Project
from ingest.models import Feature

SUM_MONEY = {"max_digits": 28, "decimal_places": 12}


class FeatureKey(models.Model):
    """The columns every per-feature rollup key starts with (its own columns follow)."""

    id = models.BigAutoField(primary_key=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    environment = models.CharField(max_length=50)
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, db_index=False)

    class Meta:
        abstract = True


def _unique_key(table: str, *columns: str) -> models.UniqueConstraint:
    """A per-feature table's unique key: FeatureKey's columns, then the table's own."""
    return models.UniqueConstraint(fields=["project", "environment", "feature", *columns], name=f"{table}_key")


class FeatureDayKey(FeatureKey):
    """FeatureKey, then `day`: a local day in the project's timezone."""

    day = models.DateField()

    class Meta:
        abstract = True
        # Every page reads a day range of the project, with or without an environment.
        indexes = [models.Index(fields=["project", "day"], name="%(class)s_project_day")]


class CallCounts(models.Model):
    """Counters every rollup table keeps, DimensionDay's included."""

    calls = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    priced_calls = models.BigIntegerField(default=0)
    unpriced_calls = models.BigIntegerField(default=0)
    cap_known_calls = models.BigIntegerField(default=0)
    error_calls = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class TokenDetail(models.Model):
    """The token sums inside input_tokens (cached reads, cache writes) and output_tokens (reasoning):
    kept by the UsageCounts tables and RouteDay, not by DimensionDay."""

    cached_input_tokens = models.BigIntegerField(default=0)
    cache_write_input_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class UsageCounts(CallCounts, TokenDetail):
    """The other counters of the tables keyed by tier or model (all but DimensionDay)."""

    cost_usd = models.DecimalField(default=0, **SUM_MONEY, help_text="Sum over priced calls.")
    client_priced_calls = models.BigIntegerField(default=0)
    uncapped_calls = models.BigIntegerField(default=0, help_text="Cap known and null or >= huge_cap_tokens.")
    cap_hit_calls = models.BigIntegerField(default=0, help_text="finish_reason = length.")

    class Meta:
        abstract = True


class Histograms(models.Model):
    latency_hist = ArrayField(models.IntegerField(), default=list)
    ttft_hist = ArrayField(models.IntegerField(), default=list)
    output_tokens_hist = ArrayField(models.IntegerField(), default=list)

    class Meta:
        abstract = True


class RoutedCounts(models.Model):
    """The Pro share's counters (docs/rollups.md#metric-definitions) of FeatureHour and ModelDay."""

    routed_calls = models.BigIntegerField(default=0, help_text="primary + escalation calls (pro_share denominator).")
    routed_pro_calls = models.BigIntegerField(default=0, help_text="Pro-tier primary + escalation calls.")

    class Meta:
        abstract = True


class RoleCounts(models.Model):
    """Per-role counters of the tables without a role column (FeatureHour, DimensionDay)."""

    primary_calls = models.BigIntegerField(default=0)
    triage_calls = models.BigIntegerField(default=0)
    escalation_calls = models.BigIntegerField(default=0)
    shadow_calls = models.BigIntegerField(default=0)
    triage_cost_usd = models.DecimalField(default=0, **SUM_MONEY)
    escalation_cost_usd = models.DecimalField(default=0, **SUM_MONEY)
    shadow_cost_usd = models.DecimalField(default=0, **SUM_MONEY)
    # Priced calls per role, so a role whose calls are all unpriced shows no cost, not $0.
    triage_priced_calls = models.BigIntegerField(default=0)
    escalation_priced_calls = models.BigIntegerField(default=0)
    shadow_priced_calls = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class HourlyRollup(FeatureKey, UsageCounts, Histograms):
    """The full key, per UTC hour."""

    hour = models.DateTimeField()
    model = models.CharField(max_length=200)
    tier = models.CharField(max_length=8)
    role = models.CharField(max_length=12)
    status = models.CharField(max_length=5)
    route_reason = models.CharField(max_length=50, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "hour", "environment", "feature", "model", "tier", "role", "status", "route_reason"],
                name="hourlyrollup_key",
            )
        ]


class FeatureHour(FeatureKey, UsageCounts, RoleCounts, RoutedCounts):
    """Narrow (project, environment, feature, hour) table that the rules read."""

    hour = models.DateTimeField()
    routed_pro_default_calls = models.BigIntegerField(
        default=0, help_text="Pro primary + escalation calls with route_reason default or fallback."
    )

    class Meta:
        constraints = [_unique_key("featurehour", "hour")]
        # Windows over all environments (rules with environment null, hourly timeseries).
        indexes = [models.Index(fields=["project", "hour"], name="featurehour_project_hour")]


class FeatureDay(FeatureDayKey, UsageCounts, Histograms):
    """Narrow (project, environment, feature, tier, role, day) table that pages read; day in project timezone."""

    tier = models.CharField(max_length=8)
    role = models.CharField(max_length=12)

    class Meta(FeatureDayKey.Meta):
        constraints = [_unique_key("featureday", "tier", "role", "day")]


class DimensionDay(FeatureKey, CallCounts, RoleCounts):
    """Daily cost per value of a declared dimension (e.g. customer), day in project timezone.
    It keeps a feature row's counters (CallCounts and the ones below), so the features list and
    daily timeseries can be filtered by a dimension value (latency histograms are not kept per
    dimension value)."""

    day = models.DateField()
    dimension = models.CharField(max_length=100)
    value = models.CharField(max_length=200)
    cost_usd = models.DecimalField(default=0, **SUM_MONEY)
    routed_calls = models.BigIntegerField(default=0)
    routed_pro_calls = models.BigIntegerField(default=0)
    uncapped_calls = models.BigIntegerField(default=0)
    cap_hit_calls = models.BigIntegerField(default=0)

    class Meta:
        constraints = [_unique_key("dimensionday", "day", "dimension", "value")]
        indexes = [models.Index(fields=["project", "dimension", "day"], name="dimensionday_project_dim_day")]


class RollupState(models.Model):
    """Per project: the rollups' high-water mark, shown as 'data as of' on every page."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="rollup_state")
    refreshed_at = models.DateTimeField(null=True, blank=True)
    data_through = models.DateTimeField(null=True, blank=True, help_text="Latest event ts folded in.")
    version = models.BigIntegerField(default=0, db_default=0,
                                     help_text="Bumped by every refresh that changed rollups or pairs (cache keys).")


class ModelDay(FeatureDayKey, UsageCounts, RoutedCounts):
    """Narrow (project, environment, feature, model, tier, day) table for the Models page and
    per-model daily series; day in project timezone."""

    model = models.CharField(max_length=200)
    tier = models.CharField(max_length=8)

    class Meta(FeatureDayKey.Meta):
        constraints = [_unique_key("modelday", "model", "tier", "day")]


class RouteDay(FeatureDayKey, TokenDetail):
    """Narrow (project, environment, feature, model, tier, role, route_reason, day) table of calls and
    token sums: HourlyRollup's key at day grain, without status, costs or histograms. The savings
    recommendations read their whole days here (docs/savings.md#recommendations), so their cost
    follows features x days, not events; day in project timezone."""

    model = models.CharField(max_length=200)
    tier = models.CharField(max_length=8)
    role = models.CharField(max_length=12)
    route_reason = models.CharField(max_length=50, blank=True, default="")
    calls = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)

    class Meta(FeatureDayKey.Meta):
        constraints = [_unique_key("routeday", "model", "tier", "role", "route_reason", "day")]


class FeatureLatencyDay(FeatureDayKey):
    """Latency and ttft histograms per (project, environment, feature, day), merged over tiers
    and roles: the features list reads percentiles from here, a fifth of FeatureDay's rows."""

    latency_hist = ArrayField(models.IntegerField(), default=list)
    ttft_hist = ArrayField(models.IntegerField(), default=list)

    class Meta(FeatureDayKey.Meta):
        constraints = [_unique_key("featurelatencyday", "day")]


class FeatureLatencyHour(FeatureKey):
    """Latency and ttft histograms per (project, environment, feature, UTC hour), merged over
    models, tiers and roles: the features list reads the partial days at its window's edges
    here, a fifth of HourlyRollup's rows."""

    hour = models.DateTimeField()
    latency_hist = ArrayField(models.IntegerField(), default=list)
    ttft_hist = ArrayField(models.IntegerField(), default=list)

    class Meta:
        constraints = [_unique_key("featurelatencyhour", "hour")]
        indexes = [models.Index(fields=["project", "hour"], name="latencyhour_project_hour")]


class SavingsPair(models.Model):
    """A Lite primary and its Pro shadow or escalation, both with a quality score: the savings
    evidence (docs/savings.md#evidence). Rebuilt by the rollup refresh for the hours it touches,
    like the other rollups; `kind` keeps escalation pairs apart (never pooled with shadows)."""

    KIND_SHADOW, KIND_ESCALATION = "shadow", "escalation"
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, db_index=False, db_constraint=False)
    environment = models.CharField(max_length=50)
    kind = models.CharField(max_length=12)
    pro_event_id = models.BigIntegerField(help_text="ingest_event.id of the Pro call (one pair per Pro call).")
    lite_event_id = models.BigIntegerField()
    lite_ts = models.DateTimeField()
    pro_ts = models.DateTimeField()
    lite_model = models.CharField(max_length=200)
    route_reason = models.CharField(max_length=50, blank=True, default="")
    lite_quality = models.FloatField()
    pro_quality = models.FloatField()
    lite_latency_ms = models.IntegerField(null=True)
    pro_latency_ms = models.IntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "pro_event_id"], name="savingspair_pro_event")]
        indexes = [models.Index(fields=["project", "feature", "lite_ts"], name="savingspair_feature_ts"),
                   models.Index(fields=["project", "lite_ts"], name="savingspair_project_ts")]

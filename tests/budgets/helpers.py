"""Test data for budgets: FeatureHour / HourlyRollup rows written directly (the rules' input)."""

import datetime as dt
from decimal import Decimal

from budgets.models import Channel, Rule
from costwatch.metrics.models import FeatureHour, HourlyRollup
from ingest.models import Feature

NOW = dt.datetime(2026, 11, 26, 12, 30, tzinfo=dt.UTC)  # cycles run at half past; the current hour is 12:00
HOUR = dt.timedelta(hours=1)


def feature(project, name="ticket-triage", **extra):
    return Feature.objects.get_or_create(project=project, name=name, defaults=extra)[0]


def feature_hours(project, feature, hours, environment="production", **counters):
    """One FeatureHour row per hour in `hours` with the same counters."""
    rows = [FeatureHour(project=project, feature=feature, environment=environment, hour=h, **counters) for h in hours]
    FeatureHour.objects.bulk_create(rows, ignore_conflicts=True)  # an hour already there keeps its counters


def hours_back(start_offset, count, now=NOW):
    """`count` hourly buckets ending `start_offset` hours before the current hour (0 = current hour)."""
    current = now.replace(minute=0, second=0, microsecond=0)
    return [current - (start_offset + i) * HOUR for i in range(count)]


def hourly(project, feature, hour, *, model="gemini-2.5-flash", tier="lite", role="primary", cost="0",
           environment="production", **counters):
    return HourlyRollup.objects.create(project=project, feature=feature, hour=hour, environment=environment,
                                       model=model, tier=tier, role=role, status="ok", cost_usd=Decimal(cost),
                                       **counters)


def only_rules(project, *kinds):
    """Keep the project's default rules of these kinds only, so a test sees one rule's alerts."""
    from budgets.services import default_rules_ensure

    default_rules_ensure(project=project, now=NOW)
    Rule.objects.filter(project=project).exclude(kind__in=kinds).delete()
    return list(Rule.objects.filter(project=project))


def webhook_channel(project, url, *, kind=Channel.WEBHOOK, secret="", name="hook"):
    return Channel.objects.create(project=project, kind=kind, name=name, target=url, secret=secret)


def uncapped_day(project, feat, *, calls=10, uncapped=1, now=NOW):
    """25 buckets (current hour + 24) of capped-known calls with some uncapped ones."""
    feature_hours(project, feat, hours_back(0, 25, now), calls=calls, cap_known_calls=calls,
                  uncapped_calls=uncapped, output_tokens=calls * 200, routed_calls=calls, primary_calls=calls)


def uncapped_feature(project, **feature_extra):
    """A feature with an uncapped last day and the unbounded-output rule as the project's only rule:
    the next rule cycle opens an alert for it. Returns the feature."""
    feat = feature(project, **feature_extra)
    uncapped_day(project, feat)
    only_rules(project, "unbounded_output")
    return feat

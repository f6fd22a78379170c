"""Reads of the ingest app: prices in effect, recomputes."""

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .models import Price, PriceRecompute


def prices_in_effect(*, project, now=None, include_history=False):
    """The global catalogue and the project's overrides: for each series the period in force
    now and any period scheduled later (or every period with include_history)."""
    now = now or timezone.now()
    rows = Price.objects.filter(Q(project__isnull=True) | Q(project=project))
    if include_history:
        return rows
    newer_in_force = Price.objects.filter(
        model=OuterRef("model"), provider=OuterRef("provider"), service_tier=OuterRef("service_tier"),
        effective_from__gt=OuterRef("effective_from"), effective_from__lte=now,
    )
    superseded = (Q(project__isnull=True) & Exists(newer_in_force.filter(project__isnull=True))) | (
        Q(project=project) & Exists(newer_in_force.filter(project=project)))
    return rows.exclude(superseded)


def recomputes_recent(*, project, limit=10):
    return PriceRecompute.objects.filter(Q(project__isnull=True) | Q(project=project))[:limit]

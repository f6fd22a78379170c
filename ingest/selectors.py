"""Reads of the ingest app: prices in effect, recomputes."""

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .models import Price, PriceImport, PriceRecompute, SeenModel


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
    """This project's recomputes and the global ones; a global one lists only the models this
    project has seen or the catalogue names (its models_matched spans every project)."""
    recomputes = list(PriceRecompute.objects.filter(Q(project__isnull=True) | Q(project=project))[:limit])
    visible = set(SeenModel.objects.filter(project=project).values_list("model", flat=True))
    visible.update(Price.objects.filter(project__isnull=True, is_glob=False).values_list("model", flat=True))
    for recompute in recomputes:
        recompute.models_visible = (recompute.models_matched if recompute.project_id is not None
                                    else [m for m in recompute.models_matched if m in visible])
    return recomputes


def catalogue_refresh_status() -> dict:
    """For the Prices page: the last successful import and, when the latest run failed, that run."""
    latest = PriceImport.objects.order_by("-started_at", "-id").first()
    last_ok = latest if latest is not None and latest.status == PriceImport.OK else (
        PriceImport.objects.filter(status=PriceImport.OK).order_by("-started_at", "-id").first())
    return {"last_import": last_ok, "failed_import": latest if latest is not None and latest.status ==
            PriceImport.FAILED else None}

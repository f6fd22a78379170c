"""Celery tasks of ingest: thin wrappers around services."""

from celery import shared_task
from django.conf import settings

from .price_import import prices_import_configured
from .recompute import RECOMPUTE_TASK, recompute_run, recomputes_stale
from .retention import events_purge


@shared_task(name=RECOMPUTE_TASK, acks_late=True)
def recompute_costs(recompute_id: int) -> int:
    """Re-price the events of a queued PriceRecompute; returns the number of events changed."""
    recompute = recompute_run(recompute_id=recompute_id)
    return recompute.events_changed if recompute else 0


@shared_task(name="ingest.tasks.resume_stale_recomputes", ignore_result=True)
def resume_stale_recomputes() -> int:
    """Queue again every recompute whose worker died or whose task was lost; the claim decides."""
    stale = recomputes_stale()
    for recompute_id in stale:
        recompute_costs.apply_async(args=[recompute_id], expires=settings.RECOMPUTE_SWEEP_SECONDS * 1.5)
    return len(stale)


@shared_task(acks_late=True)
def purge_old_events() -> int:
    """Delete raw events older than RAW_RETENTION_DAYS in batches; rollups are kept."""
    return events_purge()


@shared_task(acks_late=True)
def import_prices_source() -> str:
    """The daily import of PRICES_SOURCE into the global catalogue (a no-op when it is unset)."""
    run = prices_import_configured()
    return "off" if run is None else run.status

"""Celery tasks of ingest: thin wrappers around services."""

from celery import shared_task

from .recompute import recompute_run
from .retention import events_purge


@shared_task(acks_late=True)
def recompute_costs(recompute_id: int) -> int:
    """Re-price the events of a queued PriceRecompute; returns the number of events changed."""
    recompute = recompute_run(recompute_id=recompute_id)
    return recompute.events_changed if recompute else 0


@shared_task(acks_late=True)
def purge_old_events() -> int:
    """Delete raw events older than RAW_RETENTION_DAYS in batches; rollups are kept."""
    return events_purge()

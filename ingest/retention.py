"""Raw event retention (docs/ingest.md#storage-and-retention): events older than RAW_RETENTION_DAYS go, rollups stay.

Deleted in small batches (each its own transaction) found through the BRIN index on ts, so
the purge never holds long locks. The cutoff never comes closer than INGEST_MAX_AGE_DAYS
plus a day: an event that may still be retried keeps its (project, event_id) key, so dedup
holds whatever retention is set to.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)
PURGE_BATCH = 10_000


def retention_cutoff(now=None):
    days = max(settings.RAW_RETENTION_DAYS, settings.INGEST_MAX_AGE_DAYS + 1)
    return (now or timezone.now()) - timedelta(days=days)


def events_purge(*, now=None, batch_size=PURGE_BATCH) -> int:
    cutoff = retention_cutoff(now)
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """DELETE FROM ingest_event WHERE id IN (
                       SELECT id FROM ingest_event WHERE ts < %s LIMIT %s FOR UPDATE SKIP LOCKED)""",
                [cutoff, batch_size],
            )
            count = cursor.rowcount
        deleted += count
        if count < batch_size:
            break
    if deleted:
        logger.info("purged %s events older than %s", deleted, cutoff.isoformat())
    return deleted

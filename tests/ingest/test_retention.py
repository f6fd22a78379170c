"""purge_old_events: raw events past RAW_RETENTION_DAYS go in batches, younger ones and rollup marks stay."""

from datetime import UTC, datetime, timedelta

import pytest

from ingest.models import Event
from ingest.retention import events_purge, retention_cutoff
from ingest.services import event_rows_store
from ingest.tasks import purge_old_events

pytestmark = pytest.mark.django_db


def rows(prefix, ts, n):
    return [{"event_id": f"{prefix}{i}", "ts": ts, "feature": "f", "model": "m", "input_tokens": 1,
             "output_tokens": 1} for i in range(n)]


def test_it_deletes_only_events_older_than_the_retention_in_batches(settings, project):
    settings.RAW_RETENTION_DAYS = 400
    now = datetime.now(UTC)
    event_rows_store(project=project, rows=rows("old", now - timedelta(days=401), 7))
    event_rows_store(project=project, rows=rows("young", now - timedelta(days=399), 3))
    assert events_purge(batch_size=2) == 7
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["young0", "young1", "young2"]
    assert purge_old_events() == 0


def test_retention_never_cuts_into_the_dedup_window(settings):
    settings.RAW_RETENTION_DAYS = 10
    settings.INGEST_MAX_AGE_DAYS = 90
    now = datetime(2026, 11, 26, tzinfo=UTC)
    assert retention_cutoff(now) == now - timedelta(days=91)

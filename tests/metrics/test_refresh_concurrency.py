"""An event committed while a refresh is running is never lost (real separate connections)."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections, transaction

from costwatch.metrics import services
from costwatch.metrics.models import FeatureHour, RollupState
from ingest.models import DirtyHour
from tests.conftest import wait_for
from tests.metrics.eventdata import UTC, event_row, store_events

HOUR = dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def refresh_waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND query LIKE '%%metrics_rollupstate%%' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_an_event_committed_during_a_refresh_is_folded_in_by_the_next_run(project):
    store_events(project, [event_row(ts=HOUR + dt.timedelta(minutes=1))])
    RollupState.objects.create(project=project)
    refreshed, errors = threading.Event(), []

    def run_refresh():
        try:
            services.rollups_refresh_dirty(project=project)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()
            refreshed.set()

    with transaction.atomic():
        # This connection's lock on the state row holds the refresh after it has claimed the
        # marks and rebuilt the hour, and before it commits.
        RollupState.objects.select_for_update().get(project=project)
        worker = threading.Thread(target=run_refresh)
        worker.start()
        wait_for(lambda: _other_connection(refresh_waiting_on_a_lock), message="the refresh to block")
        # Same hour, committed while the refresh is still open.
        store_events(project, [event_row(ts=HOUR + dt.timedelta(minutes=30))])
    refreshed.wait(timeout=30)
    worker.join(timeout=5)
    assert errors == []
    assert FeatureHour.objects.get(project=project).calls == 1  # the refresh could not see it yet
    assert list(DirtyHour.objects.filter(project=project).values_list("hour", flat=True)) == [HOUR]
    services.rollups_refresh_dirty(project=project)
    assert FeatureHour.objects.get(project=project).calls == 2
    assert not DirtyHour.objects.filter(project=project).exists()


def _other_connection(check):
    """Run a check on a fresh connection (the test's own is inside a transaction)."""
    result = []

    def run():
        try:
            result.append(check())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result and result[0]

import datetime as dt

import pytest

from costwatch.metrics import tasks
from costwatch.metrics.models import FeatureDay, FeatureHour, RollupState
from ingest.models import DirtyHour
from tests.conftest import wait_for
from tests.factories import make_project
from tests.metrics.eventdata import UTC, event_row, store_events


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_beat_task_fans_out_one_refresh_per_dirty_project(project, user, start_worker):
    quiet = make_project("Quiet", owner=user)
    ts = dt.datetime(2026, 11, 20, 9, 5, tzinfo=UTC)
    store_events(project, [event_row(ts=ts), event_row(ts=ts, tier="pro", model="pro-model")])
    start_worker()
    tasks.refresh_dirty_rollups.delay()
    row = wait_for(lambda: FeatureHour.objects.filter(project=project).first(), message="the project's rollup")
    assert (row.calls, row.routed_calls, row.routed_pro_calls) == (2, 2, 1)
    assert FeatureDay.objects.filter(project=project).count() == 2  # lite and pro rows
    wait_for(lambda: not DirtyHour.objects.exists(), message="the marks to be claimed")
    assert RollupState.objects.get(project=quiet).refreshed_at is not None
    assert RollupState.objects.get(project=project).data_through == ts

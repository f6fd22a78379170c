"""The refresh's delta reads only its own project's new rows (docs/rollups.md#keeping-them-fresh):
with another project's rows written after them, the id-range scan must not walk through those."""

import json

import pytest
from django.db import connection

from costwatch.metrics import services
from costwatch.metrics.services.sql import NEW_EVENTS
from tests.factories import make_project
from tests.metrics.eventdata import event_row, store_events


def walked_rows(plan: dict) -> int:
    """Rows every scan node of an EXPLAIN ANALYZE plan returned plus those its filter dropped."""
    own = 0
    if "Scan" in plan["Node Type"]:
        own = plan["Actual Rows"] * plan.get("Actual Loops", 1) + plan.get("Rows Removed by Filter", 0)
    return own + sum(walked_rows(child) for child in plan.get("Plans", []))


@pytest.mark.django_db
def test_the_delta_scan_walks_only_its_own_project_s_new_rows(user):
    mine, other = make_project("Mine", owner=user), make_project("Other", owner=user)
    store_events(mine, [event_row() for _ in range(50)])
    services.project_refresh(project=mine)
    store_events(mine, [event_row() for _ in range(10)])  # mine's new batch
    store_events(other, [event_row() for _ in range(20_000)])  # written after it, higher ids
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ingest_event")
        cursor.execute("SELECT min(first_event_id), array_agg(DISTINCT xmin::text) FROM ingest_dirtyhour "
                       "WHERE project_id = %s AND first_event_id IS NOT NULL", [mine.pk])
        first_id, xids = cursor.fetchone()
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM ingest_event e WHERE {NEW_EVENTS}",
                       {"project_id": mine.pk, "first_id": first_id, "xids": xids})
        (plan,) = cursor.fetchone()[0]
    assert walked_rows(plan["Plan"]) <= 10, json.dumps(plan, indent=1)
    assert services.project_refresh(project=mine).events_added == 10

"""Marking a project's hours dirty (after a settings change) and rebuilding its rollups from raw events."""

import datetime as dt

from django.db import connection, transaction

from costwatch.metrics.definitions import hour_floor
from costwatch.projects.models import Project

from .refresh import project_refresh

DAY_TABLES = ("metrics_featureday", "metrics_featurelatencyday", "metrics_modelday", "metrics_dimensionday",
              "metrics_routeday")


def project_mark_all_dirty(*, project: Project, since: dt.datetime | None = None, drop_days: bool = False) -> int:
    """Mark every UTC hour that has events (since `since`) dirty, e.g. after huge_cap_tokens or
    dimensions change; the next refresh rebuilds them. Returns the number of hours marked.

    `drop_days=True` (for a timezone change) also deletes the day-level rows, which were cut
    on the old zone's midnights and would otherwise linger where no new day replaces them."""
    with transaction.atomic(), connection.cursor() as cursor:
        if drop_days:
            for table in DAY_TABLES:
                cursor.execute(f"DELETE FROM {table} WHERE project_id = %s", [project.pk])
        cursor.execute(
            """
            INSERT INTO ingest_dirtyhour (project_id, hour, created_at)
            SELECT %(project_id)s, hour, now() FROM (
                SELECT DISTINCT date_trunc('hour', ts, 'UTC') AS hour FROM ingest_event
                WHERE project_id = %(project_id)s AND (%(since)s::timestamptz IS NULL OR ts >= %(since)s)) h
            """,
            {"project_id": project.pk, "since": hour_floor(since) if since else None},
        )
        return cursor.rowcount


def rollups_rebuild(*, project: Project, since: dt.datetime | None = None) -> int:
    """Rebuild a project's rollups from raw events (all of them, or from `since`); return hours rebuilt.
    A full rebuild starts the day-level rows afresh (see project_mark_all_dirty)."""
    project_mark_all_dirty(project=project, since=since, drop_days=since is None)
    return project_refresh(project=project).hours_rebuilt

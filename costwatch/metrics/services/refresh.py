"""The refresh itself: claim marks, add new batches as deltas, re-pair scored events, rebuild
the hours and days changed in place, record the project's state.
"""

import datetime as dt
import logging
import zlib
from dataclasses import dataclass

import psycopg
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone

from costwatch.metrics.definitions import HOUR, day_start, hour_floor
from costwatch.projects.models import Project

from .pairs import pairs_refresh
from .sql import (
    DELTA_BUILD,
    DIMENSION_DAY_DELTA,
    DIMENSION_DAY_INSERT,
    FEATURE_DAY_DELTA,
    FEATURE_DAY_FROM_EVENTS,
    FEATURE_DAY_FROM_HOURS,
    FEATURE_HOUR_DELTA,
    FEATURE_HOUR_INSERT,
    FEATURE_LATENCY_DAY_DELTA,
    FEATURE_LATENCY_DAY_INSERT,
    FEATURE_LATENCY_HOUR_DELTA,
    FEATURE_LATENCY_HOUR_INSERT,
    HOURLY_DELTA,
    HOURLY_INSERT,
    MODEL_DAY_DELTA,
    MODEL_DAY_FROM_EVENTS,
    MODEL_DAY_FROM_HOURS,
    ROUTE_DAY_DELTA,
    ROUTE_DAY_FROM_EVENTS,
    ROUTE_DAY_FROM_HOURS,
)

logger = logging.getLogger(__name__)


HOURS_PER_CLAIM = 168  # one transaction rebuilds at most a week of hours


SERIALIZATION_RETRIES = 3


LOCK_NAMESPACE = zlib.crc32(b"costwatch.metrics.refresh") & 0x7FFFFFFF


class _ProjectLock:
    """One refresh of a project at a time. Outside a transaction: a session-level advisory lock,
    taken before the refresh's transactions start, so each one's snapshot sees what the previous
    refresh committed. Inside a caller's transaction (tests, a command's atomic block): the
    transaction-level lock."""

    def __init__(self, project_id: int):
        self.args = [LOCK_NAMESPACE, project_id]
        self.session = not connection.in_atomic_block

    def __enter__(self):
        with connection.cursor() as cursor:
            lock = "pg_advisory_lock" if self.session else "pg_advisory_xact_lock"
            cursor.execute(f"SELECT {lock}(%s, %s)", self.args)
        return self

    def __exit__(self, *exc):
        if self.session:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", self.args)
            except DatabaseError:  # the session is gone, and its lock with it
                logger.warning("refresh: could not release the advisory lock of project %s", self.args[1])
        return False


def _claim_new_batches(cursor, project_id: int) -> tuple[int | None, list[str]]:
    """Delete (claim) every mark of new events; return the lowest event id they bound and the
    transaction ids (xmin) that wrote them."""
    cursor.execute(
        """
        WITH claimed AS (
            DELETE FROM ingest_dirtyhour WHERE project_id = %s AND first_event_id IS NOT NULL
            RETURNING first_event_id, xmin)
        SELECT min(first_event_id), array_agg(DISTINCT xmin::text) FROM claimed
        """,
        [project_id],
    )
    first_id, xids = cursor.fetchone()
    return first_id, xids or []


def _claim_hours(cursor, project_id: int) -> list[dt.datetime]:
    """Delete (claim) the rebuild marks of up to HOURS_PER_CLAIM hours; return those hours."""
    cursor.execute(
        """
        DELETE FROM ingest_dirtyhour
        WHERE project_id = %(project_id)s AND first_event_id IS NULL AND scored_event_id IS NULL AND hour IN (
            SELECT DISTINCT hour FROM ingest_dirtyhour
            WHERE project_id = %(project_id)s AND first_event_id IS NULL AND scored_event_id IS NULL
            ORDER BY hour LIMIT %(limit)s)
        RETURNING hour
        """,
        {"project_id": project_id, "limit": HOURS_PER_CLAIM},
    )
    return sorted({hour_floor(row[0]) for row in cursor.fetchall()})


def _claim_scored(cursor, project_id: int) -> list[int]:
    """Delete (claim) every score mark; return the row ids of the scored events."""
    cursor.execute("DELETE FROM ingest_dirtyhour WHERE project_id = %s AND scored_event_id IS NOT NULL "
                   "RETURNING scored_event_id", [project_id])
    return sorted({row[0] for row in cursor.fetchall()})


def local_day_bounds(day: dt.date, tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a calendar day in a time zone, as UTC datetimes (23-25 hours around DST)."""
    start = day_start(day, tzinfo).astimezone(dt.UTC)
    end = day_start(day + dt.timedelta(days=1), tzinfo).astimezone(dt.UTC)
    return start, end


def days_touched(hours, tzinfo) -> list[dt.date]:
    """Project-timezone days that overlap the given UTC hours (an hour may straddle two days)."""
    days = set()
    for hour in hours:
        days.add(hour.astimezone(tzinfo).date())
        days.add((hour + HOUR - dt.timedelta(microseconds=1)).astimezone(tzinfo).date())
    return sorted(days)


def _add_deltas(cursor, project: Project, first_id: int, xids: list[str]) -> tuple[int, dt.datetime | None]:
    """Add the claimed batches' events to every rollup table; return (events added, latest ts)."""
    params = {"project_id": project.pk, "first_id": first_id, "xids": xids, "tz": project.timezone,
              "huge_cap": project.huge_cap_tokens, "dimensions": list(project.dimensions or [])}
    cursor.execute("DROP TABLE IF EXISTS cw_delta")
    cursor.execute(DELTA_BUILD, params)
    cursor.execute("SELECT coalesce(sum(calls), 0), max(max_ts) FROM cw_delta")
    events, latest = cursor.fetchone()
    if events:
        for statement in (HOURLY_DELTA, FEATURE_HOUR_DELTA, FEATURE_LATENCY_HOUR_DELTA, FEATURE_DAY_DELTA,
                          MODEL_DAY_DELTA, FEATURE_LATENCY_DAY_DELTA, ROUTE_DAY_DELTA):
            cursor.execute(statement, params)
        if params["dimensions"]:
            cursor.execute(DIMENSION_DAY_DELTA, params)
    cursor.execute("DROP TABLE cw_delta")
    return int(events), latest


def _replace_rows(cursor, key: str, params: dict, tables: list[tuple[str, str | None]]) -> None:
    """For each (table, insert): delete the project's rows whose `key` (hour or day) is in
    params[key + "s"], then run the insert that builds them again (None: build none)."""
    for table, insert in tables:
        cursor.execute(f"DELETE FROM {table} WHERE project_id = %(project_id)s AND {key} = ANY(%({key}s)s)", params)
        if insert:
            cursor.execute(insert, params)


def _rebuild_hours(cursor, project: Project, hours: list[dt.datetime]) -> None:
    params = {"project_id": project.pk, "hours": hours, "low": hours[0], "high": hours[-1] + HOUR,
              "huge_cap": project.huge_cap_tokens}
    _replace_rows(cursor, "hour", params, [("metrics_hourlyrollup", HOURLY_INSERT),
                                           ("metrics_featurehour", FEATURE_HOUR_INSERT),
                                           ("metrics_featurelatencyhour", FEATURE_LATENCY_HOUR_INSERT)])


def _rebuild_days(cursor, project: Project, days: list[dt.date]) -> None:
    tzinfo = project.tzinfo
    low, high = local_day_bounds(days[0], tzinfo)[0], local_day_bounds(days[-1], tzinfo)[1]
    params = {"project_id": project.pk, "days": days, "low": low, "high": high, "tz": project.timezone,
              "huge_cap": project.huge_cap_tokens, "dimensions": list(project.dimensions or [])}
    # Days that start and end on UTC hours are summed from HourlyRollup, others from raw events.
    hour_aligned = all(bound.minute == 0 and bound.second == 0
                       for day in days for bound in local_day_bounds(day, tzinfo))
    _replace_rows(cursor, "day", params, [
        ("metrics_featureday", FEATURE_DAY_FROM_HOURS if hour_aligned else FEATURE_DAY_FROM_EVENTS),
        ("metrics_featurelatencyday", FEATURE_LATENCY_DAY_INSERT),
        ("metrics_modelday", MODEL_DAY_FROM_HOURS if hour_aligned else MODEL_DAY_FROM_EVENTS),
        ("metrics_routeday", ROUTE_DAY_FROM_HOURS if hour_aligned else ROUTE_DAY_FROM_EVENTS),
        ("metrics_dimensionday", DIMENSION_DAY_INSERT if params["dimensions"] else None),
    ])


def _record_state(cursor, project: Project, hours: list[dt.datetime] | None, latest=None) -> None:
    """Advance the 'data as of' mark to this transaction's start (its snapshot: every mark
    committed by then is folded in); data_through = the latest event ts folded in so far."""
    if hours:
        cursor.execute("SELECT max(ts) FROM ingest_event WHERE project_id = %s AND ts >= %s AND ts < %s",
                       [project.pk, hours[-1], hours[-1] + HOUR])
        rebuilt_latest = cursor.fetchone()[0]
        latest = max(filter(None, [latest, rebuilt_latest]), default=None)
    cursor.execute(
        """
        INSERT INTO metrics_rollupstate (project_id, refreshed_at, data_through) VALUES (%s, now(), %s)
        ON CONFLICT (project_id) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at,
            data_through = greatest(metrics_rollupstate.data_through, EXCLUDED.data_through)
        """,
        [project.pk, latest],
    )


def _bump_version(cursor, project_id: int) -> None:
    """A new rollups version, in the transaction that changed them (docs/rollups.md#keeping-them-fresh)."""
    cursor.execute("INSERT INTO metrics_rollupstate (project_id, version) VALUES (%s, 1) ON CONFLICT (project_id) "
                   "DO UPDATE SET version = metrics_rollupstate.version + 1", [project_id])


@dataclass
class RefreshResult:
    """What one project refresh did: events added as deltas, hours rebuilt from raw events."""

    events_added: int = 0
    hours_rebuilt: int = 0

    def __add__(self, other: "RefreshResult") -> "RefreshResult":
        return RefreshResult(self.events_added + other.events_added, self.hours_rebuilt + other.hours_rebuilt)

    def __str__(self):
        return f"{self.events_added} new event(s) added, {self.hours_rebuilt} hour(s) rebuilt"


def _refresh_step(project: Project, result: RefreshResult) -> bool:
    """One transaction: add every new batch as a delta, rebuild up to HOURS_PER_CLAIM hours that
    changed in place. Returns True when no rebuild hours are left."""
    own_transaction = not connection.in_atomic_block
    for attempt in range(SERIALIZATION_RETRIES):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                if own_transaction:  # one snapshot for the claims and every read that follows
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                first_id, xids = _claim_new_batches(cursor, project.pk)
                added, latest = _add_deltas(cursor, project, first_id, xids) if xids else (0, None)
                scored = _claim_scored(cursor, project.pk)
                hours = _claim_hours(cursor, project.pk)
                pairs_refresh(cursor, project.pk, new=(first_id, xids) if xids else None, scored=scored, hours=hours)
                if hours:
                    _rebuild_hours(cursor, project, hours)
                    _rebuild_days(cursor, project, days_touched(hours, project.tzinfo))
                if xids or scored or hours:  # what caches of rollup reads are keyed by
                    _bump_version(cursor, project.pk)
                done = len(hours) < HOURS_PER_CLAIM
                if done:  # while weeks of hours are still dirty, the data is not as of now
                    _record_state(cursor, project, hours, latest)
            result.events_added += added
            result.hours_rebuilt += len(hours)
            return done
        except OperationalError as exc:
            # A concurrent write to a row this snapshot read (e.g. a timezone change dropping
            # day rows): nothing was committed, the marks are back; try again on a new snapshot.
            if not isinstance(exc.__cause__, psycopg.errors.SerializationFailure) or attempt + 1 == SERIALIZATION_RETRIES:
                raise
            logger.info("refresh of project %s: serialization failure, retrying", project.pk)
    return True


def project_refresh(*, project: Project) -> RefreshResult:
    """Bring one project's rollups up to date: new events are added as deltas, hours whose events
    changed in place are rebuilt (a week of hours per transaction)."""
    result = RefreshResult()
    with _ProjectLock(project.pk):
        while not _refresh_step(project, result):
            pass
    return result


def dirty_project_ids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT project_id FROM ingest_dirtyhour")
        return sorted(row[0] for row in cursor.fetchall())


def rollups_refresh_dirty(*, project: Project | None = None) -> RefreshResult:
    """Refresh one project, or every project with dirty marks."""
    if project is not None:
        return project_refresh(project=project)
    projects = Project.objects.filter(pk__in=dirty_project_ids())
    return sum((project_refresh(project=p) for p in projects), RefreshResult())


def rollup_state_touch_clean() -> int:
    """Projects without dirty marks are up to date right now: move their 'data as of' to now."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO metrics_rollupstate (project_id, refreshed_at)
            SELECT p.id, %s FROM projects_project p
            WHERE NOT EXISTS (SELECT 1 FROM ingest_dirtyhour d WHERE d.project_id = p.id)
            ON CONFLICT (project_id) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at
            """,
            [timezone.now()],
        )
        return cursor.rowcount

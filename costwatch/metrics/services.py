"""Rollup refresh: dirty UTC hours in, HourlyRollup / FeatureHour / FeatureDay / ModelDay / DimensionDay out.

Ingest (and a cost recompute) writes a DirtyHour mark in the same transaction as the events.
The refresh claims marks with DELETE ... RETURNING inside the transaction that rebuilds
their hours, so:
- a mark committed after the claim's snapshot is not deleted and its hour is rebuilt by the
  next run, so an event committed during a refresh is never missed;
- a refresh that fails rolls back, and its marks come back.
A per-project advisory lock keeps two refreshes of one project from rebuilding the same hour
at once. Every rebuild is set-based SQL (INSERT ... SELECT), never Python per event.
"""

import datetime as dt
import logging
import zlib
from dataclasses import dataclass

import psycopg
from django.db import DatabaseError, OperationalError, connection, transaction
from django.utils import timezone

from costwatch.metrics.definitions import HOUR, day_start, hour_floor, routed_sql
from costwatch.projects.models import Project

logger = logging.getLogger(__name__)

HOURS_PER_CLAIM = 168  # one transaction rebuilds at most a week of hours
SERIALIZATION_RETRIES = 3
LOCK_NAMESPACE = zlib.crc32(b"costwatch.metrics.refresh") & 0x7FFFFFFF

# Counters of UsageCounts computed from raw events (alias e); %(huge_cap)s is the project's.
EVENT_COUNTERS = """
    count(*),
    coalesce(sum(e.input_tokens), 0), coalesce(sum(e.cached_input_tokens), 0),
    coalesce(sum(e.cache_write_input_tokens), 0), coalesce(sum(e.output_tokens), 0),
    coalesce(sum(e.reasoning_tokens), 0),
    coalesce(sum(e.cost_usd), 0),
    count(e.cost_usd),
    count(*) - count(e.cost_usd),
    count(*) FILTER (WHERE e.cost_source = 'client' AND e.cost_usd IS NOT NULL),
    count(*) FILTER (WHERE e.cap_known),
    count(*) FILTER (WHERE e.cap_known AND (e.max_output_tokens IS NULL OR e.max_output_tokens >= %(huge_cap)s)),
    count(*) FILTER (WHERE e.finish_reason = 'length'),
    count(*) FILTER (WHERE e.status = 'error')
"""
EVENT_HISTOGRAMS = """
    cw_hist(cw_bucket(e.latency_ms)), cw_hist(cw_bucket(e.ttft_ms)), cw_hist(cw_bucket(e.output_tokens))
"""
COUNTER_COLUMNS = """
    calls, input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens,
    cost_usd, priced_calls, unpriced_calls, client_priced_calls, cap_known_calls, uncapped_calls,
    cap_hit_calls, error_calls
"""
HISTOGRAM_COLUMNS = "latency_hist, ttft_hist, output_tokens_hist"
# The same counters summed from rollup rows (alias r).
ROLLUP_COUNTERS = ", ".join(f"sum(r.{name.strip()})" for name in COUNTER_COLUMNS.split(","))
ROLLUP_HISTOGRAMS = "cw_hist_sum(r.latency_hist), cw_hist_sum(r.ttft_hist), cw_hist_sum(r.output_tokens_hist)"

HOURLY_KEY = "project_id, hour, environment, feature_id, model, tier, role, status, route_reason"
HOURLY_INSERT = f"""
INSERT INTO metrics_hourlyrollup ({HOURLY_KEY}, {COUNTER_COLUMNS}, {HISTOGRAM_COLUMNS})
SELECT e.project_id, date_trunc('hour', e.ts, 'UTC'), e.environment, e.feature_id, e.model, e.tier, e.role,
       e.status, e.route_reason, {EVENT_COUNTERS}, {EVENT_HISTOGRAMS}
FROM ingest_event e
WHERE e.project_id = %(project_id)s AND e.ts >= %(low)s AND e.ts < %(high)s
  AND date_trunc('hour', e.ts, 'UTC') = ANY(%(hours)s)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""

ROUTED = routed_sql("r")
EVENT_ROUTED = routed_sql("e")
FEATURE_HOUR_KEY = "project_id, environment, feature_id, hour"
FEATURE_HOUR_ROLE_COLUMNS = """primary_calls, triage_calls, escalation_calls, shadow_calls, routed_calls, routed_pro_calls,
    routed_pro_default_calls, triage_cost_usd, escalation_cost_usd, shadow_cost_usd, triage_priced_calls,
    escalation_priced_calls, shadow_priced_calls"""
# From rows with the HourlyRollup key (alias r), the rollup table itself or a batch's delta.
FEATURE_HOUR_SELECT = f"""
SELECT r.project_id, r.environment, r.feature_id, r.hour, {ROLLUP_COUNTERS},
    coalesce(sum(r.calls) FILTER (WHERE r.role = 'primary'), 0),
    coalesce(sum(r.calls) FILTER (WHERE r.role = 'triage'), 0),
    coalesce(sum(r.calls) FILTER (WHERE r.role = 'escalation'), 0),
    coalesce(sum(r.calls) FILTER (WHERE r.role = 'shadow'), 0),
    coalesce(sum(r.calls) FILTER (WHERE {ROUTED}), 0),
    coalesce(sum(r.calls) FILTER (WHERE {ROUTED} AND r.tier = 'pro'), 0),
    coalesce(sum(r.calls) FILTER (WHERE {ROUTED} AND r.tier = 'pro' AND r.route_reason IN ('default', 'fallback')), 0),
    coalesce(sum(r.cost_usd) FILTER (WHERE r.role = 'triage'), 0),
    coalesce(sum(r.cost_usd) FILTER (WHERE r.role = 'escalation'), 0),
    coalesce(sum(r.cost_usd) FILTER (WHERE r.role = 'shadow'), 0),
    coalesce(sum(r.priced_calls) FILTER (WHERE r.role = 'triage'), 0),
    coalesce(sum(r.priced_calls) FILTER (WHERE r.role = 'escalation'), 0),
    coalesce(sum(r.priced_calls) FILTER (WHERE r.role = 'shadow'), 0)
FROM __SOURCE__ r
"""
FEATURE_HOUR_INSERT = (
    f"INSERT INTO metrics_featurehour ({FEATURE_HOUR_KEY}, {COUNTER_COLUMNS}, {FEATURE_HOUR_ROLE_COLUMNS})"
    + FEATURE_HOUR_SELECT.replace("__SOURCE__", "metrics_hourlyrollup")
    + "WHERE r.project_id = %(project_id)s AND r.hour = ANY(%(hours)s) GROUP BY 1, 2, 3, 4"
)

FEATURE_DAY_KEY = "project_id, environment, feature_id, tier, role, day"
# FeatureDay from the hourly rollup, when the project's days start on UTC hour boundaries.
FEATURE_DAY_FROM_HOURS = f"""
INSERT INTO metrics_featureday ({FEATURE_DAY_KEY}, {COUNTER_COLUMNS}, {HISTOGRAM_COLUMNS})
SELECT r.project_id, r.environment, r.feature_id, r.tier, r.role, (r.hour AT TIME ZONE %(tz)s)::date,
       {ROLLUP_COUNTERS}, {ROLLUP_HISTOGRAMS}
FROM metrics_hourlyrollup r
WHERE r.project_id = %(project_id)s AND r.hour >= %(low)s AND r.hour < %(high)s
  AND (r.hour AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
GROUP BY 1, 2, 3, 4, 5, 6
"""

# FeatureDay from raw events, for time zones whose midnight falls inside a UTC hour (e.g. +05:30).
FEATURE_DAY_FROM_EVENTS = f"""
INSERT INTO metrics_featureday ({FEATURE_DAY_KEY}, {COUNTER_COLUMNS}, {HISTOGRAM_COLUMNS})
SELECT e.project_id, e.environment, e.feature_id, e.tier, e.role, (e.ts AT TIME ZONE %(tz)s)::date,
       {EVENT_COUNTERS}, {EVENT_HISTOGRAMS}
FROM ingest_event e
WHERE e.project_id = %(project_id)s AND e.ts >= %(low)s AND e.ts < %(high)s
  AND (e.ts AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
GROUP BY 1, 2, 3, 4, 5, 6
"""

MODEL_DAY_KEY = "project_id, environment, feature_id, model, tier, day"
MODEL_DAY_FROM_HOURS = f"""
INSERT INTO metrics_modelday ({MODEL_DAY_KEY}, {COUNTER_COLUMNS}, routed_calls, routed_pro_calls)
SELECT r.project_id, r.environment, r.feature_id, r.model, r.tier, (r.hour AT TIME ZONE %(tz)s)::date,
       {ROLLUP_COUNTERS},
       coalesce(sum(r.calls) FILTER (WHERE {ROUTED}), 0),
       coalesce(sum(r.calls) FILTER (WHERE {ROUTED} AND r.tier = 'pro'), 0)
FROM metrics_hourlyrollup r
WHERE r.project_id = %(project_id)s AND r.hour >= %(low)s AND r.hour < %(high)s
  AND (r.hour AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
GROUP BY 1, 2, 3, 4, 5, 6
"""

MODEL_DAY_FROM_EVENTS = f"""
INSERT INTO metrics_modelday ({MODEL_DAY_KEY}, {COUNTER_COLUMNS}, routed_calls, routed_pro_calls)
SELECT e.project_id, e.environment, e.feature_id, e.model, e.tier, (e.ts AT TIME ZONE %(tz)s)::date,
       {EVENT_COUNTERS},
       count(*) FILTER (WHERE {EVENT_ROUTED}),
       count(*) FILTER (WHERE {EVENT_ROUTED} AND e.tier = 'pro')
FROM ingest_event e
WHERE e.project_id = %(project_id)s AND e.ts >= %(low)s AND e.ts < %(high)s
  AND (e.ts AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
GROUP BY 1, 2, 3, 4, 5, 6
"""

FEATURE_LATENCY_DAY_KEY = "project_id, environment, feature_id, day"
FEATURE_LATENCY_DAY_INSERT = """
INSERT INTO metrics_featurelatencyday (project_id, environment, feature_id, day, latency_hist, ttft_hist)
SELECT d.project_id, d.environment, d.feature_id, d.day, cw_hist_sum(d.latency_hist), cw_hist_sum(d.ttft_hist)
FROM metrics_featureday d
WHERE d.project_id = %(project_id)s AND d.day = ANY(%(days)s)
GROUP BY 1, 2, 3, 4
"""

DIMENSION_DAY_KEY = "project_id, environment, feature_id, day, dimension, value"
DIMENSION_DAY_COUNTERS = """calls, cost_usd, priced_calls, routed_calls, routed_pro_calls, input_tokens, output_tokens,
    unpriced_calls, error_calls, cap_known_calls, uncapped_calls, cap_hit_calls, primary_calls, triage_calls,
    escalation_calls, shadow_calls, triage_cost_usd, escalation_cost_usd, shadow_cost_usd, triage_priced_calls,
    escalation_priced_calls, shadow_priced_calls"""
DIMENSION_DAY_SELECT = f"""
INSERT INTO metrics_dimensionday AS t ({DIMENSION_DAY_KEY}, {DIMENSION_DAY_COUNTERS})
SELECT e.project_id, e.environment, e.feature_id, (e.ts AT TIME ZONE %(tz)s)::date, d.key,
       left(e.attributes ->> d.key, 200),
       count(*), coalesce(sum(e.cost_usd), 0), count(e.cost_usd),
       count(*) FILTER (WHERE {EVENT_ROUTED}),
       count(*) FILTER (WHERE {EVENT_ROUTED} AND e.tier = 'pro'),
       coalesce(sum(e.input_tokens), 0), coalesce(sum(e.output_tokens), 0),
       count(*) - count(e.cost_usd),
       count(*) FILTER (WHERE e.status = 'error'),
       count(*) FILTER (WHERE e.cap_known),
       count(*) FILTER (WHERE e.cap_known AND (e.max_output_tokens IS NULL OR e.max_output_tokens >= %(huge_cap)s)),
       count(*) FILTER (WHERE e.finish_reason = 'length'),
       count(*) FILTER (WHERE e.role = 'primary'),
       count(*) FILTER (WHERE e.role = 'triage'),
       count(*) FILTER (WHERE e.role = 'escalation'),
       count(*) FILTER (WHERE e.role = 'shadow'),
       coalesce(sum(e.cost_usd) FILTER (WHERE e.role = 'triage'), 0),
       coalesce(sum(e.cost_usd) FILTER (WHERE e.role = 'escalation'), 0),
       coalesce(sum(e.cost_usd) FILTER (WHERE e.role = 'shadow'), 0),
       count(e.cost_usd) FILTER (WHERE e.role = 'triage'),
       count(e.cost_usd) FILTER (WHERE e.role = 'escalation'),
       count(e.cost_usd) FILTER (WHERE e.role = 'shadow')
FROM ingest_event e CROSS JOIN unnest(%(dimensions)s::text[]) AS d(key)
WHERE __WHERE__
  AND e.attributes ->> d.key IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
"""
DIMENSION_DAY_INSERT = DIMENSION_DAY_SELECT.replace("__WHERE__", """e.project_id = %(project_id)s
  AND e.ts >= %(low)s AND e.ts < %(high)s AND (e.ts AT TIME ZONE %(tz)s)::date = ANY(%(days)s)""")

# --- deltas: the events of newly claimed batches, added to the rows they belong to -------------
# The new events are found by id (>= the lowest bound their marks carry, on the primary key)
# and by transaction: a mark and its batch's events are written by one (sub)transaction, so the
# events' xmin is the mark's. Both are read in the refresh's one snapshot (REPEATABLE READ), in
# which a batch's mark is visible exactly when its events are.
NEW_EVENTS = "e.id >= %(first_id)s AND e.project_id = %(project_id)s AND e.xmin = ANY(%(xids)s::xid[])"
DELTA_COLUMNS = f"{HOURLY_KEY}, day, {COUNTER_COLUMNS}, {HISTOGRAM_COLUMNS}, max_ts"
DELTA_BUILD = f"""
CREATE TEMP TABLE cw_delta ({DELTA_COLUMNS}) ON COMMIT DROP AS
SELECT e.project_id, date_trunc('hour', e.ts, 'UTC'), e.environment, e.feature_id, e.model, e.tier, e.role,
       e.status, e.route_reason, (e.ts AT TIME ZONE %(tz)s)::date, {EVENT_COUNTERS}, {EVENT_HISTOGRAMS}, max(e.ts)
FROM ingest_event e
WHERE {NEW_EVENTS}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
"""


def _names(columns: str) -> list[str]:
    return [name.strip() for name in columns.split(",")]


def _added(key: str, sums: str = "", hists: str = "") -> str:
    """ON CONFLICT clause that adds a delta row to the stored one (histograms bucket by bucket)."""
    sets = [f"{name} = t.{name} + EXCLUDED.{name}" for name in _names(sums) if name]
    sets += [f"{name} = cw_hist_plus(t.{name}, EXCLUDED.{name})" for name in _names(hists) if name]
    return f" ON CONFLICT ({key}) DO UPDATE SET {', '.join(sets)}"


HOURLY_DELTA = (
    f"INSERT INTO metrics_hourlyrollup AS t ({HOURLY_KEY}, {COUNTER_COLUMNS}, {HISTOGRAM_COLUMNS}) "
    f"SELECT {', '.join('r.' + name for name in _names(HOURLY_KEY))}, {ROLLUP_COUNTERS}, {ROLLUP_HISTOGRAMS} "
    "FROM cw_delta r GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9"
    + _added(HOURLY_KEY, COUNTER_COLUMNS, HISTOGRAM_COLUMNS)
)
FEATURE_HOUR_DELTA = (
    f"INSERT INTO metrics_featurehour AS t ({FEATURE_HOUR_KEY}, {COUNTER_COLUMNS}, {FEATURE_HOUR_ROLE_COLUMNS})"
    + FEATURE_HOUR_SELECT.replace("__SOURCE__", "cw_delta") + "GROUP BY 1, 2, 3, 4"
    + _added(FEATURE_HOUR_KEY, f"{COUNTER_COLUMNS}, {FEATURE_HOUR_ROLE_COLUMNS}")
)
FEATURE_DAY_DELTA = (
    f"INSERT INTO metrics_featureday AS t ({FEATURE_DAY_KEY}, {COUNTER_COLUMNS}, {HISTOGRAM_COLUMNS}) "
    f"SELECT r.project_id, r.environment, r.feature_id, r.tier, r.role, r.day, {ROLLUP_COUNTERS}, "
    f"{ROLLUP_HISTOGRAMS} FROM cw_delta r GROUP BY 1, 2, 3, 4, 5, 6"
    + _added(FEATURE_DAY_KEY, COUNTER_COLUMNS, HISTOGRAM_COLUMNS)
)
MODEL_DAY_DELTA = (
    f"INSERT INTO metrics_modelday AS t ({MODEL_DAY_KEY}, {COUNTER_COLUMNS}, routed_calls, routed_pro_calls) "
    f"SELECT r.project_id, r.environment, r.feature_id, r.model, r.tier, r.day, {ROLLUP_COUNTERS}, "
    f"coalesce(sum(r.calls) FILTER (WHERE {ROUTED}), 0), "
    f"coalesce(sum(r.calls) FILTER (WHERE {ROUTED} AND r.tier = 'pro'), 0) "
    "FROM cw_delta r GROUP BY 1, 2, 3, 4, 5, 6"
    + _added(MODEL_DAY_KEY, f"{COUNTER_COLUMNS}, routed_calls, routed_pro_calls")
)
FEATURE_LATENCY_DAY_DELTA = (
    f"INSERT INTO metrics_featurelatencyday AS t ({FEATURE_LATENCY_DAY_KEY}, latency_hist, ttft_hist) "
    "SELECT r.project_id, r.environment, r.feature_id, r.day, cw_hist_sum(r.latency_hist), cw_hist_sum(r.ttft_hist) "
    "FROM cw_delta r GROUP BY 1, 2, 3, 4"
    + _added(FEATURE_LATENCY_DAY_KEY, hists="latency_hist, ttft_hist")
)
DIMENSION_DAY_DELTA = (DIMENSION_DAY_SELECT.replace("__WHERE__", NEW_EVENTS)
                       + _added(DIMENSION_DAY_KEY, DIMENSION_DAY_COUNTERS))


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
        WHERE project_id = %(project_id)s AND first_event_id IS NULL AND hour IN (
            SELECT DISTINCT hour FROM ingest_dirtyhour WHERE project_id = %(project_id)s AND first_event_id IS NULL
            ORDER BY hour LIMIT %(limit)s)
        RETURNING hour
        """,
        {"project_id": project_id, "limit": HOURS_PER_CLAIM},
    )
    return sorted({hour_floor(row[0]) for row in cursor.fetchall()})


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
        for statement in (HOURLY_DELTA, FEATURE_HOUR_DELTA, FEATURE_DAY_DELTA, MODEL_DAY_DELTA,
                          FEATURE_LATENCY_DAY_DELTA):
            cursor.execute(statement, params)
        if params["dimensions"]:
            cursor.execute(DIMENSION_DAY_DELTA, params)
    cursor.execute("DROP TABLE cw_delta")
    return int(events), latest


def _rebuild_hours(cursor, project: Project, hours: list[dt.datetime]) -> None:
    params = {"project_id": project.pk, "hours": hours, "low": hours[0], "high": hours[-1] + HOUR,
              "huge_cap": project.huge_cap_tokens}
    cursor.execute("DELETE FROM metrics_hourlyrollup WHERE project_id = %(project_id)s AND hour = ANY(%(hours)s)",
                   params)
    cursor.execute(HOURLY_INSERT, params)
    cursor.execute("DELETE FROM metrics_featurehour WHERE project_id = %(project_id)s AND hour = ANY(%(hours)s)",
                   params)
    cursor.execute(FEATURE_HOUR_INSERT, params)


def _rebuild_days(cursor, project: Project, days: list[dt.date]) -> None:
    tzinfo = project.tzinfo
    low, high = local_day_bounds(days[0], tzinfo)[0], local_day_bounds(days[-1], tzinfo)[1]
    params = {"project_id": project.pk, "days": days, "low": low, "high": high, "tz": project.timezone,
              "huge_cap": project.huge_cap_tokens, "dimensions": list(project.dimensions or [])}
    cursor.execute("DELETE FROM metrics_featureday WHERE project_id = %(project_id)s AND day = ANY(%(days)s)", params)
    hour_aligned = all(bound.minute == 0 and bound.second == 0
                       for day in days for bound in local_day_bounds(day, tzinfo))
    cursor.execute(FEATURE_DAY_FROM_HOURS if hour_aligned else FEATURE_DAY_FROM_EVENTS, params)
    cursor.execute("DELETE FROM metrics_featurelatencyday WHERE project_id = %(project_id)s AND day = ANY(%(days)s)",
                   params)
    cursor.execute(FEATURE_LATENCY_DAY_INSERT, params)
    cursor.execute("DELETE FROM metrics_modelday WHERE project_id = %(project_id)s AND day = ANY(%(days)s)", params)
    cursor.execute(MODEL_DAY_FROM_HOURS if hour_aligned else MODEL_DAY_FROM_EVENTS, params)
    cursor.execute("DELETE FROM metrics_dimensionday WHERE project_id = %(project_id)s AND day = ANY(%(days)s)",
                   params)
    if params["dimensions"]:
        cursor.execute(DIMENSION_DAY_INSERT, params)


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
                hours = _claim_hours(cursor, project.pk)
                if hours:
                    _rebuild_hours(cursor, project, hours)
                    _rebuild_days(cursor, project, days_touched(hours, project.tzinfo))
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


DAY_TABLES = ("metrics_featureday", "metrics_featurelatencyday", "metrics_modelday", "metrics_dimensionday")


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

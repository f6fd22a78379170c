"""Savings pairs (docs/savings.md#evidence): re-paired for just the events a refresh sees change.

A pair is a Lite primary and a Pro call with `role` shadow or escalation, joined by the Pro
call's `parent_event_id` (= the Lite call's `event_id`), or else, when it has no parent, by
the same `request_id`; both need a quality score. A Pro call pairs with at most one Lite call
(the earliest one that matches), and partners are at most a day apart.

A refresh re-pairs the events that changed: new events that can be a side of a pair, events
that got a score (score marks), and every such event in hours rebuilt in place. From those it
finds the Pro calls whose pair may have changed (themselves, the Pro calls that name a changed
Lite call, and those whose pair a rebuilt hour dropped) through partial indexes that hold only
pairable events, deletes their pairs and inserts them again. Its cost follows the changed
events, never the size of their hours.
"""

import datetime as dt

from costwatch.metrics.definitions import HOUR

from .sql import NEW_EVENTS

PARTNER_REACH = dt.timedelta(days=1)

# An event that can be a side of a pair (alias e).
PAIRABLE = ("e.quality IS NOT NULL AND ((e.role = 'primary' AND e.tier = 'lite') "
            "OR (e.role IN ('shadow', 'escalation') AND e.tier = 'pro'))")

# The changed pairable events, and the Pro calls whose pairs the rebuilt hours dropped.
REPAIR_TABLES = (
    "CREATE TEMP TABLE cw_repair (id bigint, event_id text, request_id text, role text) ON COMMIT DROP",
    "CREATE TEMP TABLE cw_repair_gone (id bigint) ON COMMIT DROP",
)

# The changed events, by where the refresh learnt of them.
CHANGED = {
    "new": NEW_EVENTS,  # the new batches, exactly as the delta finds them
    "scored": "e.id = ANY(%(scored)s) AND e.project_id = %(project_id)s",
    "hours": ("e.project_id = %(project_id)s AND e.ts >= %(low)s AND e.ts < %(high)s "
              "AND date_trunc('hour', e.ts, 'UTC') = ANY(%(hours)s)"),
}

REPAIR_FILL = f"INSERT INTO cw_repair SELECT e.id, e.event_id, e.request_id, e.role FROM ingest_event e WHERE {PAIRABLE} AND "

# Pairs of the rebuilt hours go first (an event there may no longer be pairable); their Pro
# calls are paired again, maybe with another Lite call.
PAIRS_DELETE_HOURS = """
WITH gone AS (
    DELETE FROM metrics_savingspair
    WHERE project_id = %(project_id)s AND lite_ts >= %(low)s - %(reach)s AND lite_ts < %(high)s + %(reach)s
      AND (date_trunc('hour', lite_ts, 'UTC') = ANY(%(hours)s) OR date_trunc('hour', pro_ts, 'UTC') = ANY(%(hours)s))
    RETURNING pro_event_id)
INSERT INTO cw_repair_gone SELECT pro_event_id FROM gone
"""

# The Pro calls to re-pair: changed ones, and those naming a changed Lite call (partial indexes
# event_pair_parent and event_pair_pro_request).
PROS_TABLE = """
CREATE TEMP TABLE cw_repair_pros ON COMMIT DROP AS
SELECT c.id FROM cw_repair c WHERE c.role <> 'primary'
UNION
SELECT id FROM cw_repair_gone
UNION
SELECT p.id FROM cw_repair c JOIN ingest_event p ON p.project_id = %(project_id)s AND p.parent_event_id = c.event_id
WHERE c.role = 'primary' AND p.parent_event_id <> ''
UNION
SELECT p.id FROM cw_repair c JOIN ingest_event p ON p.project_id = %(project_id)s AND p.request_id = c.request_id
WHERE c.role = 'primary' AND c.request_id <> '' AND p.request_id <> '' AND p.role IN ('shadow', 'escalation')
  AND p.parent_event_id = ''
"""

PAIRS_DELETE = """
DELETE FROM metrics_savingspair
WHERE project_id = %(project_id)s AND pro_event_id IN (SELECT id FROM cw_repair_pros)
"""

# The Lite partner by parent (the unique event id index) or by request id (event_pair_lite_request).
PARTNER = {
    "parent": "l.event_id = p.parent_event_id AND p.parent_event_id <> ''",
    "request": ("l.request_id = p.request_id AND p.parent_event_id = '' AND p.request_id <> '' "
                "AND l.request_id <> ''"),
}

PAIRS_INSERT = """
INSERT INTO metrics_savingspair (project_id, feature_id, environment, kind, pro_event_id, lite_event_id, lite_ts,
    pro_ts, lite_model, route_reason, lite_quality, pro_quality, lite_latency_ms, pro_latency_ms)
SELECT DISTINCT ON (p.id) l.project_id, l.feature_id, l.environment, p.role, p.id, l.id, l.ts, p.ts, l.model,
       coalesce(nullif(l.route_reason, ''), p.route_reason), l.quality, p.quality, l.latency_ms, p.latency_ms
FROM cw_repair_pros x
JOIN ingest_event p ON p.id = x.id
JOIN ingest_event l ON l.project_id = p.project_id AND __PARTNER__
WHERE p.project_id = %(project_id)s AND p.role IN ('shadow', 'escalation') AND p.tier = 'pro'
  AND p.quality IS NOT NULL
  AND l.role = 'primary' AND l.tier = 'lite' AND l.quality IS NOT NULL AND l.feature_id = p.feature_id
  AND l.ts >= p.ts - %(reach)s AND l.ts <= p.ts + %(reach)s
ORDER BY p.id, l.ts, l.id
ON CONFLICT (project_id, pro_event_id) DO NOTHING
"""


def pairs_refresh(cursor, project_id: int, *, new: tuple[int, list[str]] | None = None, scored=(),
                  hours=()) -> None:
    """Re-pair the changed events: `new` batches (lowest id, transaction ids), `scored` event
    row ids, and every pairable event of the rebuilt `hours`."""
    params = {"project_id": project_id, "reach": PARTNER_REACH, "scored": list(scored)}
    sources = []
    if new is not None:
        params["first_id"], params["xids"] = new
        sources.append(CHANGED["new"])
    if params["scored"]:
        sources.append(CHANGED["scored"])
    if hours:
        hours = sorted(set(hours))
        params.update(hours=hours, low=hours[0], high=hours[-1] + HOUR)
        sources.append(CHANGED["hours"])
    if not sources:
        return
    for statement in REPAIR_TABLES:
        cursor.execute(statement)
    if hours:
        cursor.execute(PAIRS_DELETE_HOURS, params)
    for source in sources:
        cursor.execute(REPAIR_FILL + source, params)
    cursor.execute("SELECT EXISTS (SELECT 1 FROM cw_repair) OR EXISTS (SELECT 1 FROM cw_repair_gone)")
    if cursor.fetchone()[0]:
        cursor.execute(PROS_TABLE, params)
        cursor.execute(PAIRS_DELETE, params)
        for partner in PARTNER.values():
            cursor.execute(PAIRS_INSERT.replace("__PARTNER__", partner), params)
        cursor.execute("DROP TABLE cw_repair_pros")
    cursor.execute("DROP TABLE cw_repair, cw_repair_gone")

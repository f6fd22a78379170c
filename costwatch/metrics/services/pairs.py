"""Savings pairs (docs/savings.md#evidence): rebuilt for the hours a refresh touches.

A pair is a Lite primary and a Pro call with `role` shadow or escalation, joined by the Pro
call's `parent_event_id` (= the Lite call's `event_id`), or else, when it has no parent, by
the same `request_id`; both need a quality score. A Pro call pairs with at most one Lite call
(the earliest one that matches), and partners are looked for within a day of each other, which
keeps the rebuild on the (project, ts) index. A pair belongs to the hours of both its calls, so
a late score on either side (which marks that call's hour) rebuilds it.
"""

import datetime as dt

from costwatch.metrics.definitions import HOUR

PARTNER_REACH = dt.timedelta(days=1)

PAIRS_DELETE = """
DELETE FROM metrics_savingspair
WHERE project_id = %(project_id)s AND lite_ts >= %(low)s - %(reach)s AND lite_ts < %(high)s + %(reach)s
  AND (date_trunc('hour', lite_ts, 'UTC') = ANY(%(hours)s) OR date_trunc('hour', pro_ts, 'UTC') = ANY(%(hours)s))
"""

PAIRS_INSERT = """
INSERT INTO metrics_savingspair (project_id, feature_id, environment, kind, pro_event_id, lite_event_id, lite_ts,
    pro_ts, lite_model, route_reason, lite_quality, pro_quality, lite_latency_ms, pro_latency_ms)
SELECT DISTINCT ON (p.id) l.project_id, l.feature_id, l.environment, p.role, p.id, l.id, l.ts, p.ts, l.model,
       coalesce(nullif(l.route_reason, ''), p.route_reason), l.quality, p.quality, l.latency_ms, p.latency_ms
FROM ingest_event p
JOIN ingest_event l ON l.project_id = p.project_id AND l.feature_id = p.feature_id
    AND (l.event_id = p.parent_event_id
         OR (p.parent_event_id = '' AND p.request_id <> '' AND l.request_id = p.request_id))
WHERE p.project_id = %(project_id)s AND p.ts >= %(low)s - %(reach)s AND p.ts < %(high)s + %(reach)s
  AND l.ts >= %(low)s - 2 * %(reach)s AND l.ts < %(high)s + 2 * %(reach)s
  AND p.role IN ('shadow', 'escalation') AND p.tier = 'pro' AND p.quality IS NOT NULL
  AND l.role = 'primary' AND l.tier = 'lite' AND l.quality IS NOT NULL
  AND abs(extract(epoch FROM p.ts - l.ts)) <= extract(epoch FROM %(reach)s)
  AND (date_trunc('hour', l.ts, 'UTC') = ANY(%(hours)s) OR date_trunc('hour', p.ts, 'UTC') = ANY(%(hours)s))
ORDER BY p.id, l.ts, l.id
ON CONFLICT (project_id, pro_event_id) DO NOTHING
"""


def pairs_rebuild_hours(cursor, project_id: int, hours: list[dt.datetime]) -> None:
    """Delete and re-insert every pair with a call in one of `hours` (set-based SQL)."""
    if not hours:
        return
    hours = sorted(set(hours))
    params = {"project_id": project_id, "hours": hours, "low": hours[0], "high": hours[-1] + HOUR,
              "reach": PARTNER_REACH}
    cursor.execute(PAIRS_DELETE, params)
    cursor.execute(PAIRS_INSERT, params)

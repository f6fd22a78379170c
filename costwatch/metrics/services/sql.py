"""The set-based SQL of the refresh: rebuilding rollup rows of whole hours and days, and adding
the deltas of new batches to the rows they belong to.
"""

from costwatch.metrics.definitions import routed_sql

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


MODEL_DAY_KEY = "project_id, environment, feature_id, model, tier, day"


# Where a day table's rows come from: the hourly rollup (alias r) when the project's days start
# on UTC hour boundaries, raw events (alias e) for time zones whose midnight falls inside a UTC
# hour (e.g. +05:30). `calls_where` counts the source's calls that meet a condition.
HOURS_SOURCE = {"table": "metrics_hourlyrollup r", "alias": "r", "time": "r.hour", "counters": ROLLUP_COUNTERS,
                "histograms": ROLLUP_HISTOGRAMS, "routed": ROUTED,
                "calls_where": lambda condition: f"coalesce(sum(r.calls) FILTER (WHERE {condition}), 0)"}
EVENTS_SOURCE = {"table": "ingest_event e", "alias": "e", "time": "e.ts", "counters": EVENT_COUNTERS,
                 "histograms": EVENT_HISTOGRAMS, "routed": EVENT_ROUTED,
                 "calls_where": lambda condition: f"count(*) FILTER (WHERE {condition})"}


def _day_insert(table: str, key: str, own_key: tuple[str, str], columns: str, values: str, source: dict) -> str:
    """INSERT the rows of `table` for the project's local days %(days)s, grouped by the key
    (project, environment, feature, the table's `own_key` columns, the local day)."""
    alias, time = source["alias"], source["time"]
    return f"""
INSERT INTO {table} ({key}, {columns})
SELECT {alias}.project_id, {alias}.environment, {alias}.feature_id, {alias}.{own_key[0]}, {alias}.{own_key[1]},
       ({time} AT TIME ZONE %(tz)s)::date, {values}
FROM {source["table"]}
WHERE {alias}.project_id = %(project_id)s AND {time} >= %(low)s AND {time} < %(high)s
  AND ({time} AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
GROUP BY 1, 2, 3, 4, 5, 6
"""


def _feature_day_insert(source: dict) -> str:
    return _day_insert("metrics_featureday", FEATURE_DAY_KEY, ("tier", "role"),
                       f"{COUNTER_COLUMNS}, {HISTOGRAM_COLUMNS}", f"{source['counters']}, {source['histograms']}",
                       source)


def _model_day_insert(source: dict) -> str:
    routed, calls_where = source["routed"], source["calls_where"]
    routed_pro = f"{routed} AND {source['alias']}.tier = 'pro'"
    values = f"{source['counters']}, {calls_where(routed)}, {calls_where(routed_pro)}"
    return _day_insert("metrics_modelday", MODEL_DAY_KEY, ("model", "tier"),
                       f"{COUNTER_COLUMNS}, routed_calls, routed_pro_calls", values, source)


FEATURE_DAY_FROM_HOURS = _feature_day_insert(HOURS_SOURCE)
FEATURE_DAY_FROM_EVENTS = _feature_day_insert(EVENTS_SOURCE)
MODEL_DAY_FROM_HOURS = _model_day_insert(HOURS_SOURCE)
MODEL_DAY_FROM_EVENTS = _model_day_insert(EVENTS_SOURCE)


FEATURE_LATENCY_DAY_KEY = "project_id, environment, feature_id, day"


FEATURE_LATENCY_DAY_INSERT = """
INSERT INTO metrics_featurelatencyday (project_id, environment, feature_id, day, latency_hist, ttft_hist)
SELECT d.project_id, d.environment, d.feature_id, d.day, cw_hist_sum(d.latency_hist), cw_hist_sum(d.ttft_hist)
FROM metrics_featureday d
WHERE d.project_id = %(project_id)s AND d.day = ANY(%(days)s)
GROUP BY 1, 2, 3, 4
"""


FEATURE_LATENCY_HOUR_KEY = "project_id, environment, feature_id, hour"


# From rows with the HourlyRollup key (alias r), the rollup table itself or a batch's delta.
FEATURE_LATENCY_HOUR_SELECT = f"""
SELECT {FEATURE_LATENCY_HOUR_KEY}, cw_hist_sum(r.latency_hist), cw_hist_sum(r.ttft_hist) FROM __SOURCE__ r
"""


FEATURE_LATENCY_HOUR_INSERT = (
    f"INSERT INTO metrics_featurelatencyhour ({FEATURE_LATENCY_HOUR_KEY}, latency_hist, ttft_hist)"
    + FEATURE_LATENCY_HOUR_SELECT.replace("__SOURCE__", "metrics_hourlyrollup")
    + "WHERE r.project_id = %(project_id)s AND r.hour = ANY(%(hours)s) GROUP BY 1, 2, 3, 4"
)


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


FEATURE_LATENCY_HOUR_DELTA = (
    f"INSERT INTO metrics_featurelatencyhour AS t ({FEATURE_LATENCY_HOUR_KEY}, latency_hist, ttft_hist)"
    + FEATURE_LATENCY_HOUR_SELECT.replace("__SOURCE__", "cw_delta") + "GROUP BY 1, 2, 3, 4"
    + _added(FEATURE_LATENCY_HOUR_KEY, hists="latency_hist, ttft_hist")
)


DIMENSION_DAY_DELTA = (DIMENSION_DAY_SELECT.replace("__WHERE__", NEW_EVENTS)
                       + _added(DIMENSION_DAY_KEY, DIMENSION_DAY_COUNTERS))


ROUTE_DAY_KEY = "project_id, environment, feature_id, model, tier, role, route_reason, day"


ROUTE_DAY_COUNTERS = "calls, input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens"


# RouteDay (what the savings recommendations read) from rows with the HourlyRollup key (alias r):
# the rollup table itself when the project's days start on UTC hours, or a batch's delta.
ROUTE_DAY_SELECT = f"""
SELECT r.project_id, r.environment, r.feature_id, r.model, r.tier, r.role, r.route_reason, __DAY__,
       {", ".join(f"sum(r.{name.strip()})" for name in ROUTE_DAY_COUNTERS.split(","))}
FROM __SOURCE__ r
"""


ROUTE_DAY_FROM_HOURS = (
    f"INSERT INTO metrics_routeday ({ROUTE_DAY_KEY}, {ROUTE_DAY_COUNTERS})"
    + ROUTE_DAY_SELECT.replace("__DAY__", "(r.hour AT TIME ZONE %(tz)s)::date").replace("__SOURCE__",
                                                                                        "metrics_hourlyrollup")
    + """WHERE r.project_id = %(project_id)s AND r.hour >= %(low)s AND r.hour < %(high)s
  AND (r.hour AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"""
)


ROUTE_DAY_FROM_EVENTS = f"""
INSERT INTO metrics_routeday ({ROUTE_DAY_KEY}, {ROUTE_DAY_COUNTERS})
SELECT e.project_id, e.environment, e.feature_id, e.model, e.tier, e.role, e.route_reason,
       (e.ts AT TIME ZONE %(tz)s)::date, count(*), coalesce(sum(e.input_tokens), 0),
       coalesce(sum(e.cached_input_tokens), 0), coalesce(sum(e.cache_write_input_tokens), 0),
       coalesce(sum(e.output_tokens), 0), coalesce(sum(e.reasoning_tokens), 0)
FROM ingest_event e
WHERE e.project_id = %(project_id)s AND e.ts >= %(low)s AND e.ts < %(high)s
  AND (e.ts AT TIME ZONE %(tz)s)::date = ANY(%(days)s)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""


ROUTE_DAY_DELTA = (
    f"INSERT INTO metrics_routeday AS t ({ROUTE_DAY_KEY}, {ROUTE_DAY_COUNTERS})"
    + ROUTE_DAY_SELECT.replace("__DAY__", "r.day").replace("__SOURCE__", "cw_delta")
    + "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
    + _added(ROUTE_DAY_KEY, ROUTE_DAY_COUNTERS)
)

"""Per-project ingest rate limit: a token bucket of events per second (docs/ingest.md#the-events-endpoint).

Capacity is one second of the rate, but never less than one full batch (1000 events), so
a project with a low limit can still send a batch and then waits. With `REDIS_URL` set the
bucket lives in Redis and is taken in one Lua script (atomic, Redis' own clock); otherwise
it is one row per project in PostgreSQL, taken with one conditional UPDATE. Neither is a
read-then-write.
"""

import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from .validation import MAX_BATCH_EVENTS

logger = logging.getLogger(__name__)

REDIS_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then tokens = capacity; ts = now end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds, >= 1 when refused
    limit: int = 0


def bucket_capacity(rate: int) -> int:
    return max(rate, MAX_BATCH_EVENTS)


def ingest_rate_take(*, project, events: int) -> Verdict:
    """Take `events` tokens from the project's bucket, or say how long to wait."""
    rate = project.effective_rate_limit()
    if not rate:
        return Verdict(allowed=True)
    # A request larger than the bucket (an OTLP export of thousands of spans) could never be let
    # through and would be retried forever: charge it a full bucket instead.
    events = min(events, bucket_capacity(rate))
    if settings.REDIS_URL:
        try:
            wait = _redis_take(project.pk, rate, events)
        except Exception as exc:  # Redis down: ingest keeps working, unthrottled, and says so
            logger.warning("ingest rate limit skipped, Redis unavailable: %s", exc)
            return Verdict(allowed=True, limit=rate)
    else:
        wait = _postgres_take(project.pk, rate, events)
    if wait <= 0:
        return Verdict(allowed=True, limit=rate)
    return Verdict(allowed=False, retry_after=max(1, math.ceil(wait)), limit=rate)


_redis_script = None


def _redis_take(project_id: int, rate: int, events: int) -> float:
    global _redis_script
    if _redis_script is None:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        _redis_script = client.register_script(REDIS_BUCKET_LUA)
    key = f"costwatch:ingest-bucket:{project_id}"
    return float(_redis_script(keys=[key], args=[rate, bucket_capacity(rate), events]))


_REFILLED = "LEAST(%(capacity)s, b.tokens + %(rate)s * EXTRACT(EPOCH FROM (c.t - b.updated_at)))"


def _postgres_take(project_id: int, rate: int, events: int) -> float:
    params = {"project_id": project_id, "rate": float(rate), "capacity": float(bucket_capacity(rate)),
              "cost": float(events)}
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute(
                f"""WITH c AS (SELECT clock_timestamp() AS t)
                    UPDATE ingest_ratebucket b SET tokens = {_REFILLED} - %(cost)s, updated_at = c.t
                    FROM c WHERE b.project_id = %(project_id)s AND {_REFILLED} >= %(cost)s
                    RETURNING b.tokens""",
                params,
            )
            if cursor.fetchone() is not None:
                return 0.0
            cursor.execute(
                f"WITH c AS (SELECT clock_timestamp() AS t) SELECT {_REFILLED} FROM ingest_ratebucket b, c "
                "WHERE b.project_id = %(project_id)s",
                params,
            )
            found = cursor.fetchone()
            if found is not None and found[0] < events:
                return (events - found[0]) / rate
            if found is not None:
                continue  # refilled since the UPDATE: take again
            cursor.execute(
                """INSERT INTO ingest_ratebucket (project_id, tokens, updated_at)
                   VALUES (%(project_id)s, %(capacity)s, clock_timestamp()) ON CONFLICT (project_id) DO NOTHING""",
                params,
            )
    return 0.0

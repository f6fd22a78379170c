"""Per-project ingest rate limit: a token bucket of events per second (docs/ingest.md#the-events-endpoint).

Capacity is one second of the rate, but never less than one full batch (1000 events), so
a project with a low limit can still send a batch and then waits. A request larger than the
bucket (an OTLP export of up to 10,000 spans) goes through on a full bucket and is charged
every event it holds: the bucket goes into debt, and the next request waits until it is paid. With `REDIS_URL` set the
bucket lives in Redis and is taken in one Lua script (atomic, Redis' own clock); otherwise
it is one row per project in PostgreSQL, taken with one conditional UPDATE. Neither is a
read-then-write.
"""

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from .event_fields import MAX_BATCH_EVENTS

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
local needed = math.min(cost, capacity)
if tokens >= needed then tokens = tokens - cost else wait = (needed - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return tostring(wait)
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds, >= 1 when refused
    limit: int = 0
    store_down: bool = False  # refused because the bucket's store is unreachable (fail closed)

    @property
    def status_code(self) -> int:
        return 503 if self.store_down else 429

    @property
    def code(self) -> str:
        return "rate_limiter_unavailable" if self.store_down else "rate_limited"

    @property
    def message(self) -> str:
        if self.store_down:
            return f"the rate limiter's store is unreachable; retry after {self.retry_after} s"
        return f"over this project's ingest rate limit of {self.limit} events/s; retry after {self.retry_after} s"


STORE_DOWN_RETRY_AFTER_SECONDS = 5
STORE_DOWN_LOG_INTERVAL_SECONDS = 60
_store_down_logged_at: float | None = None


def _store_down(exc: Exception, rate: int) -> Verdict:
    """Redis unreachable: INGEST_RATE_LIMIT_FAIL_OPEN [true] lets ingest go on unthrottled,
    false refuses with 503; either way one log line a minute per process, not one per request."""
    global _store_down_logged_at
    now = time.monotonic()
    if _store_down_logged_at is None or now - _store_down_logged_at >= STORE_DOWN_LOG_INTERVAL_SECONDS:
        _store_down_logged_at = now
        action = "ingest goes on unthrottled" if settings.INGEST_RATE_LIMIT_FAIL_OPEN else "ingest is refused (503)"
        logger.warning("ingest rate limiter: Redis unavailable (%s); %s until it is back "
                       "(INGEST_RATE_LIMIT_FAIL_OPEN; logged at most once a minute)", exc.__class__.__name__, action)
    if settings.INGEST_RATE_LIMIT_FAIL_OPEN:
        return Verdict(allowed=True, limit=rate)
    return Verdict(allowed=False, retry_after=STORE_DOWN_RETRY_AFTER_SECONDS, limit=rate, store_down=True)


def bucket_capacity(rate: int) -> int:
    return max(rate, MAX_BATCH_EVENTS)


def ingest_rate_take(*, project, events: int) -> Verdict:
    """Take `events` tokens from the project's bucket, or say how long to wait."""
    rate = project.effective_rate_limit()
    if not rate:
        return Verdict(allowed=True)
    if settings.REDIS_URL:
        try:
            wait = _redis_take(project.pk, rate, events)
        except Exception as exc:  # any failure of the store, whatever the client raises
            return _store_down(exc, rate)
    else:
        wait = _postgres_take(project.pk, rate, events)
    if wait <= 0:
        return Verdict(allowed=True, limit=rate)
    return Verdict(allowed=False, retry_after=max(1, math.ceil(wait)), limit=rate)


_redis_scripts: dict = {}  # REDIS_URL -> the registered script


def _redis_take(project_id: int, rate: int, events: int) -> float:
    script = _redis_scripts.get(settings.REDIS_URL)
    if script is None:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        script = _redis_scripts[settings.REDIS_URL] = client.register_script(REDIS_BUCKET_LUA)
    key = f"costwatch:ingest-bucket:{project_id}"
    return float(script(keys=[key], args=[rate, bucket_capacity(rate), events]))


_REFILLED = "LEAST(%(capacity)s, b.tokens + %(rate)s * EXTRACT(EPOCH FROM (c.t - b.updated_at)))"


def _postgres_take(project_id: int, rate: int, events: int) -> float:
    capacity = bucket_capacity(rate)
    needed = min(events, capacity)  # more than the bucket holds: let through on a full bucket, into debt
    params = {"project_id": project_id, "rate": float(rate), "capacity": float(capacity),
              "cost": float(events), "needed": float(needed)}
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute(
                f"""WITH c AS (SELECT clock_timestamp() AS t)
                    UPDATE ingest_ratebucket b SET tokens = {_REFILLED} - %(cost)s, updated_at = c.t
                    FROM c WHERE b.project_id = %(project_id)s AND {_REFILLED} >= %(needed)s
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
            if found is not None and found[0] < needed:
                return (needed - found[0]) / rate
            if found is not None:
                continue  # refilled since the UPDATE: take again
            cursor.execute(
                """INSERT INTO ingest_ratebucket (project_id, tokens, updated_at)
                   VALUES (%(project_id)s, %(capacity)s, clock_timestamp()) ON CONFLICT (project_id) DO NOTHING""",
                params,
            )
    return 0.0

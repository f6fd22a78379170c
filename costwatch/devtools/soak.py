"""The parts of `manage.py soak`: event mix, client processes, RSS sampling and the end checks.

The command (costwatch/projects/management/commands/soak.py) wires them together: gunicorn
and one Celery worker with beat, `--clients` processes sending batches for `--seconds`, then
checks that what the API acknowledged is exactly what is stored and rolled up.
"""

import datetime as dt
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec
from django.db import connection

FEATURES = ["chat-answer", "search-rank", "summarize", "extract-fields", "translate", "support-triage",
            "code-review", "title-gen"]
LITE_MODELS = [("gemini-2.5-flash-lite", "google"), ("gpt-5-mini", "openai"), ("claude-haiku-4-5-20251001", "anthropic")]
PRO_MODELS = [("gemini-2.5-pro", "google"), ("gpt-5", "openai"), ("claude-sonnet-4-5-20250929", "anthropic")]
UNPRICED_MODEL = "soak-in-house-13b"  # in no price catalogue: stored unpriced, fires unpriced_traffic
SPREAD_SECONDS = 48 * 3600  # the widest spread of timestamps (--spread-seconds), over the last 48 h
PROBE_FEATURE = "soak-probe"
RETRY_SHARE = 0.02  # share of batches re-sent whole, like a client retrying after a lost response
BAD_SHARE = 0.01  # share of events inside good batches that break an event rule (docs/ingest.md#event-fields)
RSS_LIMIT_MB = 300  # web and worker RSS < 300 MB (README.md#benchmarks)


def _bad_event(event: dict, rng: random.Random) -> dict:
    """Break one event rule, so the API must reject this event and keep the rest of its batch."""
    kind = rng.randrange(5)
    if kind == 0:
        event["output_tokens"] = -1
    elif kind == 1:
        event["reasoning_tokens"] = event["output_tokens"] + 1
    elif kind == 2:
        event["feature"] = "bad/feature"
    elif kind == 3:
        event["input_tokens"] = str(event["input_tokens"])  # a token count must be a JSON integer
    else:
        event["timestamp"] = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    return event


def make_batch(*, run_id: str, client: int, index: int, size: int, now: dt.datetime,
               spread: float = SPREAD_SECONDS) -> tuple[bytes, int]:
    """One request body (deterministic per run, client and batch) and how many of its events are good."""
    rng = random.Random(f"{run_id}:{client}:{index}")
    events, good = [], 0
    for i in range(size):
        pick = rng.random()
        model, provider = (UNPRICED_MODEL, "") if pick < 0.03 else rng.choice(PRO_MODELS if pick < 0.35 else LITE_MODELS)
        input_tokens = rng.randint(100, 12_000)
        output_tokens = rng.randint(5, 1_500)
        event = {
            "event_id": f"{run_id}-{client}-{index}-{i}",
            "timestamp": (now - dt.timedelta(seconds=rng.uniform(0, spread))).isoformat(),
            "feature": rng.choice(FEATURES), "model": model, "input_tokens": input_tokens,
            "cached_input_tokens": rng.randint(0, input_tokens // 3), "output_tokens": output_tokens,
            "reasoning_tokens": rng.randint(0, output_tokens // 4),
            "max_output_tokens": rng.choice([None, 512, 2048]), "finish_reason": rng.choice(["stop", "stop", "length"]),
            "latency_ms": rng.randint(80, 8_000), "ttft_ms": rng.randint(30, 700),
            "role": rng.choice(["primary", "primary", "primary", "triage", "escalation"]),
            "route_reason": rng.choice(["simple", "complex", "default"]),
            "request_id": f"{run_id}-{client}-{index}-r{i // 2}", "attributes": {"customer": f"c{rng.randint(1, 40)}"},
        }
        if provider:
            event["provider"] = provider
        if rng.random() < BAD_SHARE:
            event = _bad_event(event, rng)
        else:
            good += 1
        events.append(event)
    return msgspec.json.encode({"events": events}), good


@dataclass
class ClientTally:
    """What one client process sent and what the API answered."""

    batches: int = 0
    retries: int = 0
    events_sent: int = 0  # every event posted, retries included
    good_unique: int = 0  # good events of first sends: what must end up stored
    bad_sent: int = 0  # bad events posted, retries included: what must be rejected
    retried_good: int = 0  # good events re-sent: what must come back as duplicates
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed_requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    latencies: list = field(default_factory=list)

    def merge(self, other: "ClientTally") -> None:
        for name in ("batches", "retries", "events_sent", "good_unique", "bad_sent", "retried_good", "accepted",
                     "duplicates", "rejected", "failed_requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.statuses.update(other.statuses)
        self.latencies.extend(other.latencies)


def _post(session, url, body, headers, tally: ClientTally) -> bool:
    """POST one body; wait and resend on 429/503 (Retry-After); True once the API answered 200/207/400."""
    import requests

    for _attempt in range(10):
        started = time.perf_counter()
        try:
            response = session.post(url, data=body, headers=headers, timeout=60)
        except requests.RequestException:
            tally.statuses["connection error"] += 1
            tally.failed_requests += 1
            return False
        tally.latencies.append(time.perf_counter() - started)
        tally.statuses[str(response.status_code)] += 1
        if response.status_code in (429, 503):
            time.sleep(min(5.0, float(response.headers.get("Retry-After") or 1)))
            continue
        if response.status_code not in (200, 207, 400):
            tally.failed_requests += 1
            return False
        result = response.json()
        tally.accepted += result.get("accepted", 0)
        tally.duplicates += result.get("duplicates", 0)
        tally.rejected += result.get("rejected", 0)
        return True
    tally.failed_requests += 1
    return False


def send_paced(args) -> ClientTally:
    """Client process: batches of `size` at `rate` events/s until `deadline` (epoch seconds)."""
    import requests

    url, key, run_id, client, rate, size, deadline, spread = args
    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    rng = random.Random(f"{run_id}:{client}:retries")
    tally = ClientTally()
    interval = size / rate
    started = time.time()
    index = 0
    while time.time() < deadline:
        due = started + index * interval
        if due > time.time():
            time.sleep(min(due - time.time(), max(0.0, deadline - time.time())))
            if time.time() >= deadline:
                break
        body, good = make_batch(run_id=run_id, client=client, index=index, size=size, now=dt.datetime.now(dt.UTC),
                                spread=spread)
        tally.batches += 1
        tally.events_sent += size
        tally.good_unique += good
        tally.bad_sent += size - good
        if _post(session, url, body, headers, tally) and rng.random() < RETRY_SHARE:
            tally.retries += 1
            tally.events_sent += size
            tally.bad_sent += size - good
            tally.retried_good += good
            _post(session, url, body, headers, tally)
        index += 1
    return tally


class FreshnessProbe(threading.Thread):
    """Freshness as a user sees it: every `interval` s one event (feature soak-probe, timestamp now)
    is sent through the events API, and the read API is polled until it counts it; a probe's lag is
    the time from its 200 to the first read that shows it."""

    def __init__(self, *, base_url: str, ingest_key: str, read_key: str, run_id: str, interval: float):
        super().__init__(daemon=True)
        self.base_url, self.run_id, self.interval = base_url, run_id, interval
        self.ingest_headers = {"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"}
        self.read_headers = {"Authorization": f"Bearer {read_key}"}
        self.since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        self.acked: list[float] = []  # monotonic time of each probe's 200, in order
        self.seen: list[float] = []  # monotonic time the read API first counted probe i
        self.sent = 0
        self.sending = threading.Event()
        self.sending.set()
        self.stopped = threading.Event()

    def run(self):
        import requests

        session = requests.Session()
        next_send = time.monotonic()
        while not self.stopped.is_set():
            if self.sending.is_set() and time.monotonic() >= next_send:
                next_send = time.monotonic() + self.interval
                self._send(session)
            if len(self.seen) < len(self.acked):
                self._poll(session)
            self.stopped.wait(0.5)

    def _send(self, session):
        event = {"event_id": f"probe-{self.run_id}-{self.sent}", "timestamp": dt.datetime.now(dt.UTC).isoformat(),
                 "feature": PROBE_FEATURE, "model": LITE_MODELS[0][0], "provider": LITE_MODELS[0][1],
                 "input_tokens": 10, "output_tokens": 5}
        self.sent += 1
        try:
            response = session.post(f"{self.base_url}/api/v1/events", json={"events": [event]},
                                    headers=self.ingest_headers, timeout=60)
        except Exception:  # noqa: BLE001 - a lost probe is counted as not acknowledged
            return
        if response.status_code == 200 and response.json().get("accepted") == 1:
            self.acked.append(time.monotonic())

    def _poll(self, session):
        query = {"metric": "calls", "granularity": "hour", "feature": PROBE_FEATURE,
                 "start": self.since.strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            response = session.get(f"{self.base_url}/api/v1/timeseries", params=query, headers=self.read_headers,
                                   timeout=60)
        except Exception:  # noqa: BLE001 - try again at the next poll
            return
        if response.status_code != 200:  # e.g. the probe feature is not rolled up yet
            return
        counted = sum(point["value"] for point in response.json()["results"])
        now = time.monotonic()
        while len(self.seen) < min(counted, len(self.acked)):
            self.seen.append(now)

    def lags(self) -> list[float]:
        return [seen - acked for acked, seen in zip(self.acked, self.seen, strict=False)]


REFRESH_LINE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+: \w+/[^\]]*\] refresh: project (\S+): "
                          r"(\d+) events added, (\d+) hours rebuilt in ([\d.]+) s")


def refresh_cost_by_minute(text: str, *, project_slug: str) -> list[tuple[int, int, int, float]]:
    """From the worker log: per minute since the first refresh of the project, (minute, refreshes,
    new events added, seconds spent), to print the refresh's cost per 1,000 new events over time."""
    runs = [(dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S"), int(events), float(seconds))
            for stamp, slug, events, _hours, seconds in REFRESH_LINE.findall(text) if slug == project_slug]
    if not runs:
        return []
    first = runs[0][0]
    minutes: dict[int, list] = {}
    for when, events, seconds in runs:
        entry = minutes.setdefault(int((when - first).total_seconds() // 60) + 1, [0, 0, 0.0])
        entry[0] += 1
        entry[1] += events
        entry[2] += seconds
    return [(minute, *minutes[minute]) for minute in sorted(minutes)]


class RssSampler(threading.Thread):
    """Every `interval` s: RSS of the largest gunicorn worker and of all of them; the same for the Celery
    worker's processes (the worker and its embedded beat)."""

    def __init__(self, *, gunicorn_pid: int, celery_pid: int, interval: float):
        super().__init__(daemon=True)
        self.gunicorn_pid, self.celery_pid, self.interval = gunicorn_pid, celery_pid, interval
        self.samples: list[dict] = []
        self._halt = threading.Event()

    def sample(self) -> dict | None:
        import psutil

        try:
            workers = psutil.Process(self.gunicorn_pid).children(recursive=True)
            celery = psutil.Process(self.celery_pid)
            celery_rss = [p.memory_info().rss for p in [celery, *celery.children(recursive=True)]]  # worker + beat
            worker_rss = [w.memory_info().rss for w in workers]
        except psutil.Error:
            return None
        mb = 1024 * 1024
        row = {"web_max": max(worker_rss, default=0) / mb, "web_total": sum(worker_rss) / mb,
               "celery_max": max(celery_rss) / mb, "celery_total": sum(celery_rss) / mb}
        self.samples.append(row)
        return row

    def run(self):
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self):
        self._halt.set()
        self.join(timeout=self.interval + 5)
        self.sample()  # the end figure, after the rollups caught up

    def figures(self, name: str) -> tuple[float, float, float]:
        values = [s[name] for s in self.samples] or [0.0]
        return values[0], max(values), values[-1]


# --- checks (they read raw events on purpose: they audit the rollups) ----------------------------

@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def stored_counts(*, project_id: int, run_id: str) -> tuple[int, int]:
    """(events of this run, event_ids of the project stored more than once)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingest_event WHERE project_id = %s AND event_id LIKE %s",
                       [project_id, f"{run_id}-%"])
        stored = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM (SELECT event_id FROM ingest_event WHERE project_id = %s "
                       "GROUP BY event_id HAVING count(*) > 1) d", [project_id])
        return stored, cursor.fetchone()[0]


SUM_NAMES = ["calls", "input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "cost_usd",
             "unpriced_calls"]
RAW_BY_HOUR = """
SELECT date_trunc('hour', ts, 'UTC'), count(*), sum(input_tokens), sum(cached_input_tokens), sum(output_tokens),
       sum(reasoning_tokens), coalesce(sum(cost_usd), 0), count(*) - count(cost_usd)
FROM ingest_event WHERE project_id = %s GROUP BY 1
"""
ROLLUP_BY_HOUR = """
SELECT hour, sum(calls), sum(input_tokens), sum(cached_input_tokens), sum(output_tokens), sum(reasoning_tokens),
       sum(cost_usd), sum(unpriced_calls)
FROM metrics_hourlyrollup WHERE project_id = %s GROUP BY 1
"""
FEATURE_HOUR_TOTALS = "SELECT coalesce(sum(calls), 0), coalesce(sum(cost_usd), 0) FROM metrics_featurehour " \
                      "WHERE project_id = %s"


def rollup_comparison(*, project_id: int) -> dict:
    """Per-hour sums of raw events beside the HourlyRollup's, and FeatureHour totals."""
    with connection.cursor() as cursor:
        cursor.execute(RAW_BY_HOUR, [project_id])
        raw = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
        cursor.execute(ROLLUP_BY_HOUR, [project_id])
        rolled = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
        cursor.execute(FEATURE_HOUR_TOTALS, [project_id])
        feature_hour = cursor.fetchone()
    zero = (0, 0, 0, 0, 0, Decimal(0), 0)
    mismatched = sorted(h for h in raw.keys() | rolled.keys() if raw.get(h, zero) != rolled.get(h, zero))
    totals = lambda rows: [sum(r[i] for r in rows.values()) for i in range(len(SUM_NAMES))]  # noqa: E731
    return {"hours": len(raw), "mismatched_hours": mismatched, "raw": dict(zip(SUM_NAMES, totals(raw), strict=True)),
            "rollup": dict(zip(SUM_NAMES, totals(rolled), strict=True)),
            "feature_hour": {"calls": feature_hour[0], "cost_usd": feature_hour[1]}}


TASK_DONE = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded in ([\d.]+)s")


def worker_task_stats(text: str) -> tuple[dict[str, list[float]], int]:
    """Seconds of each succeeded task by short name, and how many tasks expired before a worker took them."""
    durations: dict[str, list[float]] = {}
    for name, seconds in TASK_DONE.findall(text):
        durations.setdefault(name.rsplit(".", 1)[-1], []).append(float(seconds))
    return durations, text.count("Discarding revoked task")


def worker_log_problems(text: str) -> list[str]:
    return [line for line in text.splitlines() if "ERROR" in line or "Traceback" in line or "CRITICAL" in line]

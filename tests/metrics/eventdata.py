"""Hand-built usage events for rollup and read-API tests, and the Python arithmetic that the
rollups are checked against (never the code's own SQL)."""

import datetime as dt
import random
from decimal import Decimal

from ingest.services import event_rows_store

UTC = dt.UTC


def event_row(**overrides) -> dict:
    row = {
        "event_id": None, "ts": dt.datetime(2026, 11, 20, 10, 15, tzinfo=UTC), "feature": "ticket-triage",
        "environment": "production", "model": "gemini-2.5-flash-lite", "provider": "google", "tier": "lite",
        "role": "primary", "status": "ok", "input_tokens": 1000, "cached_input_tokens": 0,
        "cache_write_input_tokens": 0, "output_tokens": 200, "reasoning_tokens": 0, "max_output_tokens": 512,
        "cap_known": True, "finish_reason": "stop", "latency_ms": 800, "ttft_ms": 200, "route_reason": "",
        "cost_usd": Decimal("0.000180000000"), "cost_source": "catalogue", "attributes": {},
    }
    row.update(overrides)
    return row


def store_events(project, rows: list[dict]) -> list[dict]:
    """Write events through ingest's own write path (COPY + ON CONFLICT, DirtyHour marks in the
    same transaction); rows are already priced, so each keeps exactly the cost it states."""
    rows = [dict(row, event_id=row["event_id"] or f"ev-{random.getrandbits(64):x}-{i}")
            for i, row in enumerate(rows)]
    result = event_rows_store(project=project, rows=rows)
    assert result.accepted == len(rows), result
    return rows


def random_rows(seed: int, count: int, *, start: dt.datetime, hours: int, features=("triage", "search-rank"),
                dimensions=("customer",)) -> list[dict]:
    """A mixed bag: every role, tier (incl. unknown), cap state, finish reason, priced and unpriced."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        tier = rng.choice(["lite", "lite", "pro", "unknown"])
        cap_known = rng.random() > 0.1
        priced = rng.random() > 0.15
        attributes = {}
        if rng.random() > 0.2:
            attributes[dimensions[0]] = rng.choice(["acme", "globex", "initech"])
        if rng.random() > 0.5:
            attributes["other"] = rng.randint(1, 3)
        rows.append(event_row(
            ts=start + dt.timedelta(seconds=rng.randrange(hours * 3600)),
            feature=rng.choice(features),
            environment=rng.choice(["production", "production", "staging"]),
            model={"lite": "flash-lite", "pro": "pro-model", "unknown": "mystery"}[tier],
            tier=tier,
            role=rng.choice(["primary", "primary", "primary", "triage", "escalation", "shadow"]),
            status=rng.choice(["ok"] * 9 + ["error"]),
            route_reason=rng.choice(["", "default", "fallback", "complex"]),
            input_tokens=rng.randint(0, 5000),
            output_tokens=rng.randint(0, 9000),
            max_output_tokens=(rng.choice([None, 256, 8191, 8192, 20000]) if cap_known else None),
            cap_known=cap_known,
            finish_reason=rng.choice(["stop", "stop", "length", "tool_calls"]),
            latency_ms=rng.choice([None, rng.randint(0, 30000)]),
            ttft_ms=rng.choice([None, rng.randint(0, 3000)]),
            cost_usd=(Decimal(rng.randint(0, 10**9)) / Decimal(10**12) if priced else None),
            cost_source=("client" if priced and rng.random() < 0.2 else "catalogue") if priced else "",
            attributes=attributes,
        ))
    return rows


def is_uncapped(row, huge_cap) -> bool:
    return row["cap_known"] and (row["max_output_tokens"] is None or row["max_output_tokens"] >= huge_cap)


def counters(rows, huge_cap=8192) -> dict:
    """The UsageCounts of some events, by plain Python arithmetic."""
    priced = [r for r in rows if r["cost_usd"] is not None]
    return {
        "calls": len(rows),
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "cached_input_tokens": sum(r["cached_input_tokens"] for r in rows),
        "cache_write_input_tokens": sum(r["cache_write_input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "reasoning_tokens": sum(r["reasoning_tokens"] for r in rows),
        "cost_usd": sum((r["cost_usd"] for r in priced), Decimal(0)),
        "priced_calls": len(priced),
        "unpriced_calls": len(rows) - len(priced),
        "client_priced_calls": sum(1 for r in priced if r["cost_source"] == "client"),
        "cap_known_calls": sum(1 for r in rows if r["cap_known"]),
        "uncapped_calls": sum(1 for r in rows if is_uncapped(r, huge_cap)),
        "cap_hit_calls": sum(1 for r in rows if r["finish_reason"] == "length"),
        "error_calls": sum(1 for r in rows if r["status"] == "error"),
    }


def routed(rows):
    return [r for r in rows if r["role"] in ("primary", "escalation")]


def group(rows, key):
    groups = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def utc_hour(ts):
    return ts.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def nearest_rank(values, q):
    import math

    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    return values[max(1, math.ceil(q * len(values))) - 1]

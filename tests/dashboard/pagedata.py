"""Hand-built events for the page tests, stored the way ingest stores them (event_rows_store),
then folded into rollups by the real refresh. Expected numbers are computed in the tests from
these rows with plain Python."""

import datetime as dt
import itertools
from decimal import Decimal

from costwatch.metrics.services import rollups_refresh_dirty
from ingest.services import event_rows_store

UTC = dt.UTC
_ids = itertools.count(1)


def row(**overrides) -> dict:
    base = {
        "event_id": f"t-{next(_ids)}", "ts": dt.datetime(2026, 10, 10, 12, 0, tzinfo=UTC), "feature": "alpha",
        "environment": "production", "model": "m-lite", "provider": "acme", "tier": "lite", "client_tier": "",
        "role": "primary", "status": "ok", "service_tier": "standard", "input_tokens": 1000,
        "cached_input_tokens": 0, "cache_write_input_tokens": 0, "output_tokens": 100, "reasoning_tokens": 0,
        "max_output_tokens": 512, "cap_known": True, "finish_reason": "stop", "latency_ms": 500, "ttft_ms": 100,
        "request_id": "", "parent_event_id": "", "route_reason": "", "confidence": None, "quality": None,
        "cost_usd": Decimal("0.001"), "client_cost_usd": None, "cost_source": "catalogue", "price_id": None,
        "attributes": {},
    }
    base.update(overrides)
    return base


def store(project, rows) -> None:
    event_rows_store(project=project, rows=rows)
    rollups_refresh_dirty(project=project)


def alpha_beta_rows(ts=None) -> list[dict]:
    """alpha: 3 Lite primaries, 1 Pro primary, 1 Lite triage; beta: 2 uncapped Pro primaries (one hits
    its length limit) and 1 unpriced call."""
    ts = ts or dt.datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
    return [
        row(ts=ts, output_tokens=100), row(ts=ts, output_tokens=200), row(ts=ts, output_tokens=1000),
        row(ts=ts, model="m-pro", tier="pro", cost_usd=Decimal("0.02"), output_tokens=3000, route_reason="default"),
        row(ts=ts, role="triage", cost_usd=Decimal("0.0001"), output_tokens=5),
        row(ts=ts + dt.timedelta(days=1), feature="beta", model="m-pro", tier="pro", cost_usd=Decimal("0.05"),
            max_output_tokens=None, output_tokens=900),
        row(ts=ts + dt.timedelta(days=2), feature="beta", model="m-pro", tier="pro", cost_usd=Decimal("0.05"),
            max_output_tokens=None, output_tokens=4000, finish_reason="length"),
        row(ts=ts + dt.timedelta(days=2), feature="beta", model="m-free", tier="unknown", cost_usd=None,
            cost_source="", output_tokens=10),
    ]


RANGE = {"start": "2026-10-01", "end": "2026-11-01"}

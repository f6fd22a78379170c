"""Small builders for ingest tests: events as an app would send them, and price rows."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ingest.models import Price

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def recent(hours=1, minutes=0):
    """A timestamp inside the accepted window, on a fixed minute so hour buckets are predictable."""
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    return now - timedelta(hours=hours, minutes=minutes)


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def event(event_id="e1", **fields):
    body = {
        "event_id": event_id,
        "timestamp": iso(recent()),
        "feature": "ticket-triage",
        "model": "test-lite-1",
        "input_tokens": 1000,
        "output_tokens": 200,
    }
    body.update(fields)
    return body


def price(model="test-lite-1", *, project=None, effective_from=EPOCH, **fields):
    values = {"input_per_mtok": Decimal("0.10"), "output_per_mtok": Decimal("0.40"), "tier": "lite"}
    values.update({k: (Decimal(v) if isinstance(v, str) and k.endswith("_mtok") else v) for k, v in fields.items()})
    return Price.objects.create(model=model, project=project, effective_from=effective_from, **values)


def mtok(tokens, per_mtok) -> Decimal:
    """Python-side expected cost: tokens x price per 1M, exact."""
    return Decimal(tokens) * Decimal(per_mtok) / Decimal(1_000_000)

"""The seeded global catalogue (`ingest/data/prices.json`), loaded by a data migration.

Idempotent: a row whose period (model, provider, service tier, effective_from) already
exists in the global catalogue is left alone, so reloading never overwrites history.
"""

import json
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

SEED_PATH = Path(__file__).resolve().parent / "data" / "prices.json"
_MONEY = ("input_per_mtok", "cached_input_per_mtok", "cache_write_input_per_mtok", "output_per_mtok",
          "reasoning_output_per_mtok", "long_context_input_per_mtok", "long_context_cached_input_per_mtok",
          "long_context_output_per_mtok")


def seed_rows(path=SEED_PATH) -> list[dict]:
    document = json.loads(Path(path).read_text())
    effective_from = datetime.fromisoformat(document["effective_from"])
    rows = []
    for raw in document["prices"]:
        row = {key: (Decimal(value) if key in _MONEY else value) for key, value in raw.items()}
        row.setdefault("effective_from", effective_from)
        rows.append(row)
    return rows


@cache
def seed_source(path=SEED_PATH) -> dict:
    """Where the seed came from: {"name", "package", "version", "file", "url", "taken_on"}."""
    return json.loads(Path(path).read_text()).get("source") or {}


def prices_seed_load(price_model=None, path=SEED_PATH) -> int:
    """Create the missing seed rows; `price_model` is the (historical) Price model in migrations."""
    if price_model is None:
        from .models import Price as price_model
    created = 0
    for row in seed_rows(path):
        row = {**row, "provider": row.get("provider", ""), "service_tier": row.get("service_tier", "standard")}
        key = {k: row[k] for k in ("model", "provider", "service_tier", "effective_from")}
        if price_model.objects.filter(project__isnull=True, **key).exists():
            continue
        is_glob = any(char in row["model"] for char in "*?[")
        price_model.objects.create(project=None, is_glob=is_glob, created_by="seed", **row)
        created += 1
    return created

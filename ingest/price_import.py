"""Importing a price file in LiteLLM's format into the global catalogue (docs/prices.md).

One set of rules for `manage.py import_prices` and the daily PRICES_SOURCE import: a series
(model, provider, service tier) new to the catalogue takes effect from 2000-01-01, so the calls
already stored unpriced get their cost; a changed price starts a new period at the import
time; an unchanged one adds nothing; a tier edited by hand is kept. History is never
rewritten. The whole file goes in one transaction: a source that cannot be fetched or parsed
changes nothing, and every run, failed or not, is recorded as a PriceImport and shown on the
Prices page.
"""

import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from costwatch.projects.services import audit_record

from .catalogue import SEED_EFFECTIVE_FROM, price_create, recompute_queue
from .litellm import litellm_rows
from .models import PRICE_FIELDS, Price, PriceImport
from .recompute import models_matching

logger = logging.getLogger(__name__)
FETCH_TIMEOUT_SECONDS = 30


class PriceSourceError(Exception):
    """The source could not be read as a LiteLLM price file."""


def price_source_read(source: str) -> dict:
    """The document at `source` (an http(s) URL or a path), or PriceSourceError saying why not."""
    limit = settings.PRICES_SOURCE_MAX_BYTES
    if source.startswith(("http://", "https://")):
        try:
            with requests.get(source, timeout=FETCH_TIMEOUT_SECONDS, stream=True) as response:
                if response.status_code != 200:
                    raise PriceSourceError(f"{source} answered HTTP {response.status_code}")
                body = response.raw.read(limit + 1, decode_content=True)
        except requests.RequestException as exc:
            raise PriceSourceError(f"cannot fetch {source}: {exc.__class__.__name__}") from exc
    else:
        try:
            with Path(source).open("rb") as file:
                body = file.read(limit + 1)
        except OSError as exc:
            raise PriceSourceError(f"cannot read {source}: {exc.strerror or exc}") from exc
    if len(body) > limit:
        raise PriceSourceError(f"{source} is larger than PRICES_SOURCE_MAX_BYTES ({limit} bytes)")
    try:
        document = json.loads(body, parse_float=Decimal)
    except ValueError as exc:
        raise PriceSourceError(f"{source} is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise PriceSourceError(f"{source}: expected a JSON object of model name -> prices")
    return document


@dataclass
class ImportOutcome:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    added_models: set[str] = field(default_factory=set)
    touched_models: set[str] = field(default_factory=set)


def catalogue_import(*, document: dict, changed_at, actor_label: str) -> ImportOutcome:
    """Apply a LiteLLM document to the global catalogue (inside the caller's transaction)."""
    try:
        rows, skipped = litellm_rows(document)
    except (ArithmeticError, ValueError, TypeError, AttributeError) as exc:
        raise PriceSourceError(f"a price in the file is not a number: {exc!r}") from exc
    outcome = ImportOutcome(skipped=list(skipped))
    for row in rows:
        result = _import_row(row, changed_at, actor_label)
        label = f"{row['model']} [{row['provider'] or 'any'}/{row['service_tier']}]"
        if result == "added":
            outcome.added.append(label)
            outcome.added_models.add(row["model"])
        elif result == "changed":
            outcome.changed.append(label)
        elif result == "unchanged":
            outcome.unchanged += 1
            outcome.skipped.append((label, result))
        else:
            outcome.skipped.append((label, result))
        if result in ("added", "changed"):
            outcome.touched_models.add(row["model"])
    return outcome


def _import_row(row, changed_at, actor_label) -> str:
    series = Price.objects.filter(project__isnull=True, model=row["model"], provider=row["provider"],
                                  service_tier=row["service_tier"])
    current = series.filter(effective_from__lte=changed_at).order_by("-effective_from").first()
    if current is None and series.exists():
        return "a future period exists already"
    values = {name: row.get(name) for name in PRICE_FIELDS}
    if current is not None and all(getattr(current, name) == values[name] for name in PRICE_FIELDS):
        return "unchanged"
    effective = SEED_EFFECTIVE_FROM if current is None else changed_at
    tier = current.tier if current is not None else row["tier"]  # a tier edited by hand is kept
    try:
        price_create(project=None, values={**values, "model": row["model"], "provider": row["provider"],
                                           "service_tier": row["service_tier"], "tier": tier,
                                           "effective_from": effective},
                     actor_label=actor_label, queue_recompute=False)
    except ValidationError as exc:
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
    return "added" if current is None else "changed"


def prices_import(*, source: str, now=None, actor_label: str = "import_prices", queue_recompute=True) -> PriceImport:
    """Import `source` in one transaction and record the run (audited); a broken or unreachable
    source changes nothing and is recorded as failed. Models seen in events that gained their
    first price get a queued re-pricing of their stored calls."""
    started_at = timezone.now()
    changed_at = now or started_at
    try:
        document = price_source_read(source)
        with transaction.atomic():
            outcome = catalogue_import(document=document, changed_at=changed_at, actor_label=actor_label)
            newly_priced = sorted({m for model in outcome.added_models
                                   for m in models_matching(project=None, pattern=model, is_glob=False)})
            record = PriceImport.objects.create(
                source=source, started_at=started_at, finished_at=timezone.now(), status=PriceImport.OK,
                added=outcome.added, changed=outcome.changed, unchanged_count=outcome.unchanged,
                skipped=[[label, reason] for label, reason in outcome.skipped if reason != "unchanged"][:500],
                repriced_models=newly_priced)
            audit_record(project=None, actor_label=actor_label, action="import", target_type="price_import",
                         target_id=record.pk, after={"source": source, "added": outcome.added,
                                                     "changed": outcome.changed, "repriced_models": newly_priced})
            if newly_priced and queue_recompute:
                recompute_queue(project=None, models=newly_priced, since=SEED_EFFECTIVE_FROM)
    except Exception as exc:  # a daily job: whatever went wrong is rolled back, logged and shown
        error = str(exc) if isinstance(exc, PriceSourceError) else f"import failed: {exc!r}"
        logger.warning("price import from %s changed nothing: %s", source, error)
        return PriceImport.objects.create(source=source, started_at=started_at, finished_at=timezone.now(),
                                          status=PriceImport.FAILED, error=error[:2000])
    record.outcome = outcome
    return record


def prices_import_configured(*, now=None) -> PriceImport | None:
    """The daily import of PRICES_SOURCE; None when it is not set."""
    source = settings.PRICES_SOURCE.strip()
    if not source:
        return None
    return prices_import(source=source, now=now, actor_label="prices_source")

"""Writes of the price catalogue: add a price period (global or a project override), the glob
tie check, the before/after preview and the recompute it queues. Every change is audited.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from costwatch.celery import app as celery_app
from costwatch.metrics.definitions import isoformat_z
from costwatch.projects.services import audit_record

from .models import (
    PRICE_FIELDS,
    PRICE_MONEY_FIELDS,
    SERVICE_TIER_NAMES,
    Price,
    PriceRecompute,
    SeenModel,
    glob_literal_length,
    is_glob,
)
from .pricing import model_matches
from .recompute import (
    RECOMPUTE_TASK,
    RecomputeResult,
    costs_recompute,
    events_matching_count,
    models_matching,
)

SEED_EFFECTIVE_FROM = datetime(2000, 1, 1, tzinfo=UTC)
PRICE_QUANTUM = Decimal("0.000001")


def price_as_dict(price: Price) -> dict:
    """A price in the API's field names (prices as decimal strings)."""
    data = {
        "id": price.id,
        "scope": "override" if price.project_id else "global",
        "model": price.model,
        "provider": price.provider or None,
        "service_tier": price.service_tier,
        "tier": price.tier or None,
    }
    for name in PRICE_FIELDS:
        value = getattr(price, name)
        data[name] = value if name == "long_context_threshold" or value is None else f"{value:f}"
    data["effective_from"] = isoformat_z(price.effective_from)
    return data


def price_values_check(values: dict, *, is_override: bool) -> None:
    """Rules a price must meet beyond field types; raises ValidationError naming the field."""
    errors = {}
    if values.get("service_tier", "standard") not in SERVICE_TIER_NAMES:
        errors["service_tier"] = f"must be one of {', '.join(SERVICE_TIER_NAMES)}"
    has_input, has_output = values.get("input_per_mtok") is not None, values.get("output_per_mtok") is not None
    if has_input != has_output:
        errors["output_per_mtok" if has_input else "input_per_mtok"] = (
            "input_per_mtok and output_per_mtok go together")
    elif not has_input and not (is_override and values.get("tier")):
        errors["input_per_mtok"] = "is required (only a project override may set just a tier)"
    for name in PRICE_MONEY_FIELDS:
        value = values.get(name)
        if value is not None and (value < 0 or value != value.quantize(PRICE_QUANTUM)):
            errors[name] = "must be >= 0 with at most 6 decimals"
    if values.get("long_context_threshold") is not None and values.get("long_context_input_per_mtok") is None:
        errors["long_context_input_per_mtok"] = "is required with long_context_threshold"
    lc_prices = [n for n in PRICE_MONEY_FIELDS if n.startswith("long_context_") and values.get(n) is not None]
    if lc_prices and values.get("long_context_threshold") is None:
        errors["long_context_threshold"] = "is required with long-context prices"
    if errors:
        raise ValidationError({name: ValidationError(message, code="invalid") for name, message in errors.items()})


def glob_tie(*, project, model: str, provider: str, service_tier: str) -> tuple[str, str] | None:
    """(other glob, model id) when `model` ties on literal length with another glob of the same
    scope that matches a known model id it also matches; None when the precedence is clear."""
    if not is_glob(model):
        return None
    length = glob_literal_length(model)
    others = Price.objects.filter(is_glob=True, service_tier=service_tier).exclude(model=model)
    others = others.filter(project=project) if project is not None else others.filter(project__isnull=True)
    rivals = {p for p, prov in others.values_list("model", "provider").distinct()
              if glob_literal_length(p) == length and (not prov or not provider or prov == provider)}
    if not rivals:
        return None
    exact = Price.objects.filter(is_glob=False)
    if project is not None:  # never name another project's private model in the error
        exact = exact.filter(Q(project__isnull=True) | Q(project=project))
    known = set(exact.values_list("model", flat=True))
    seen = SeenModel.objects.all() if project is None else SeenModel.objects.filter(project=project)
    known.update(seen.values_list("model", flat=True))
    for model_id in sorted(known):
        if model_matches(model, True, model_id):
            for rival in sorted(rivals):
                if model_matches(rival, True, model_id):
                    return rival, model_id
    return None


@dataclass
class PriceChange:
    price: Price
    recompute: PriceRecompute | None
    preview: RecomputeResult | None = None


def price_values_normalize(values: dict, *, project=None) -> dict:
    values = {**values}
    values["effective_from"] = values.get("effective_from") or price_start_default(project=project,
                                                                                    model=values["model"])
    values["provider"] = values.get("provider") or ""
    values["service_tier"] = values.get("service_tier") or "standard"
    values["tier"] = values.get("tier") or ""
    return values


def price_start_default(*, project, model: str):
    """Where a price without `effective_from` starts: for a model new to the catalogue (or to the
    project's overrides) 2000-01-01, as the seed and import_prices do, so the calls already stored
    unpriced get their cost; for a model that has a price there, now (a price change)."""
    known = Price.objects.filter(model=model)
    known = known.filter(project=project) if project is not None else known.filter(project__isnull=True)
    return timezone.now() if known.exists() else SEED_EFFECTIVE_FROM


def price_validate(*, project, values: dict) -> None:
    """Everything a new price must meet (field rules, glob ties, one period per start); raises
    ValidationError naming the field."""
    price_values_check(values, is_override=project is not None)
    tie = glob_tie(project=project, model=values["model"], provider=values["provider"],
                   service_tier=values["service_tier"])
    if tie:
        rival, model_id = tie
        raise ValidationError({"model": ValidationError(
            f"glob {values['model']!r} ties with {rival!r} ({glob_literal_length(rival)} literal characters each) "
            f"and both match {model_id!r}; make one of them more specific", code="glob_tie")})
    if Price.objects.filter(project=project, model=values["model"], provider=values["provider"],
                            service_tier=values["service_tier"], effective_from=values["effective_from"]).exists():
        raise ValidationError({"effective_from": ValidationError(
            "a period of this price already starts at this time", code="unique")})


def recompute_queue(*, project, models, since) -> PriceRecompute:
    """Record a recompute and hand it to Celery once the price change commits. The row is the
    record of the work: with the broker down the send fails (logged, not raised, so the price
    is still saved) and resume_stale_recomputes queues it again when the broker is back."""
    recompute = PriceRecompute.objects.create(project=project, models_matched=list(models), since=since)
    # Sent by the task's name: ingest.tasks imports the services, so no service imports it.
    transaction.on_commit(lambda: celery_app.send_task(RECOMPUTE_TASK, args=[recompute.pk]), robust=True)
    return recompute


def price_create(*, project, values: dict, actor=None, actor_label: str = "", queue_recompute=True) -> PriceChange:
    """Add a price period (`project` None = global). Raises ValidationError naming the field."""
    values = price_values_normalize(values, project=project)
    with transaction.atomic():
        price_validate(project=project, values=values)
        price = Price(project=project, created_by=actor_label or (actor.get_username() if actor else ""), **values)
        price.save()
        audit_record(project=project, actor=actor, actor_label=actor_label or price.created_by or "system",
                     action="create", target_type="price", target_id=price.pk, after=price_as_dict(price))
        recompute = None
        if queue_recompute:
            models = models_matching(project=project, pattern=price.model, is_glob=price.is_glob)
            if models:
                recompute = recompute_queue(project=project, models=models, since=price.effective_from)
    return PriceChange(price=price, recompute=recompute)


class _PreviewRollback(Exception):
    pass


PREVIEW_MAX_EVENTS = 20_000  # re-priced in the web request, as a sample; the recompute does all
PREVIEW_COUNT_CAP = 1_000_000  # index entries counted at most


@dataclass
class PricePreview:
    """What saving a price would do: `matching` events touched (at least, when `more` is set),
    and the re-pricing of the first `sample_size` of them (`sample`)."""

    matching: int = 0
    more: bool = False
    sample_size: int = PREVIEW_MAX_EVENTS
    sample: RecomputeResult = field(default_factory=RecomputeResult)


def price_preview(*, project, values: dict) -> PricePreview:
    """Events and dollars a new price would change, computed by saving it inside a transaction
    that is then rolled back (so the preview uses exactly the matching code of ingest). Bounded:
    the events touched are counted (up to PREVIEW_COUNT_CAP), and at most PREVIEW_MAX_EVENTS of
    them are re-priced here; the recompute queued on saving walks them all on the worker."""
    preview = PricePreview(sample_size=PREVIEW_MAX_EVENTS)
    try:
        with transaction.atomic():
            change = price_create(project=project, values=values, actor_label="preview", queue_recompute=False)
            models = models_matching(project=project, pattern=change.price.model, is_glob=change.price.is_glob)
            if models:
                since = change.price.effective_from
                counted = events_matching_count(project=project, models=models, since=since, cap=PREVIEW_COUNT_CAP)
                preview.matching, preview.more = min(counted, PREVIEW_COUNT_CAP), counted > PREVIEW_COUNT_CAP
                preview.sample = costs_recompute(project=project, models=models, since=since, dry_run=True,
                                                 limit=PREVIEW_MAX_EVENTS)
            raise _PreviewRollback
    except _PreviewRollback:
        pass
    return preview


def price_delete(*, price: Price, actor=None, actor_label: str = "") -> PriceChange:
    """Remove a price period (a mistake, not a price change: history is kept by adding rows)."""
    project, before = price.project, price_as_dict(price)
    models = models_matching(project=project, pattern=price.model, is_glob=price.is_glob)
    with transaction.atomic():
        price.delete()
        audit_record(project=project, actor=actor, actor_label=actor_label, action="delete", target_type="price",
                     target_id=before["id"], before=before)
        recompute = recompute_queue(project=project, models=models, since=price.effective_from) if models else None
    return PriceChange(price=price, recompute=recompute)

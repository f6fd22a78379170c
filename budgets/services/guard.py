"""The budget guard: what an app asks before a call."""

import hashlib
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .. import selectors
from .cycle import budget_numbers


def budget_status(*, project, feature_name: str | None, dimension_value: tuple[str, str] | None = None,
                  now=None) -> dict:
    """What an app asks before a call: is a budget on this feature (its models, tiers, the
    project) or on this customer (a dimension value, per-value budgets included) blown?"""
    value_hash = hashlib.sha256(repr(dimension_value).encode()).hexdigest()[:16] if dimension_value else ""
    cache_key = f"budget-status:{project.pk}:{feature_name or ''}:{value_hash}"
    cached = cache.get(cache_key) if now is None else None
    if cached is not None:
        return cached
    now = now or timezone.now()
    budgets, over = [], []
    for rule in selectors.budget_rules_covering(project=project, feature_name=feature_name,
                                                dimension_value=dimension_value, now=now):
        value = dimension_value[1] if rule.is_per_value else None
        verdict, _start, _end = budget_numbers(rule=rule, now=now, value=value)
        budgets.append({
            "rule_id": rule.pk, "period": rule.params["period"], "amount_usd": verdict.numbers["amount_usd"],
            "spent_usd": verdict.numbers["spent_usd"], "forecast_usd": verdict.numbers["forecast_usd"],
            "level": verdict.level,
        })
        over.append(Decimal(verdict.numbers["spent_usd"]) >= Decimal(rule.params["amount_usd"]))
    status = {"feature": feature_name, "dimension": dict([dimension_value]) if dimension_value else None,
              "over_budget": any(over), "budgets": budgets}
    cache.set(cache_key, status, timeout=settings.BUDGET_STATUS_CACHE_SECONDS)
    return status


def value_budget_levels(*, project, dimension: str, values: list[str], now=None) -> dict[str, dict]:
    """For the Customers page: per value, the budget on it (its own or a per-value one) that is
    furthest spent: {value: {"rule_id", "period", "amount_usd", "spent_usd", "spent_percent", "level"}}."""
    now = now or timezone.now()
    rules = [rule for rule in selectors.value_budget_rules(project=project, dimension=dimension, values=values)]
    levels = {}
    for value in values:
        for rule in rules:
            if not rule.is_per_value and rule.dimension[dimension] != value:
                continue
            verdict, _start, _end = budget_numbers(rule=rule, now=now, value=value)
            numbers = verdict.numbers
            best = levels.get(value)
            if best is None or (numbers["spent_percent"] or 0) > (best["spent_percent"] or 0):
                levels[value] = {"rule_id": rule.pk, "period": numbers["period"], "amount_usd": numbers["amount_usd"],
                                 "spent_usd": numbers["spent_usd"], "spent_percent": numbers["spent_percent"],
                                 "level": verdict.level}
    return levels

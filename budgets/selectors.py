"""Reads for rules and alerts. Usage numbers come from the rollup tables only, never raw events.

Windows are made of hourly buckets (docs/alerts.md#rules): "the last 24 h" is the current (partial) hour
and the 24 full hours before it; "7 days" the current hour and 168 before; "the 28 days
before" the 672 buckets before either of those.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Q, Sum

from costwatch.metrics.definitions import (
    HOUR,
    WINDOW_7D,
    WINDOW_24H,
    WINDOW_28D,
    WINDOW_35D,
    day_start,
    hour_floor,
)
from costwatch.metrics.models import DimensionDay, FeatureDay, FeatureHour, HourlyRollup

from .models import EVERY_VALUE, KIND_SPEND_BUDGET, Alert, Delivery, Rule
from .rules import Window

WINDOW_FIELDS = [
    "calls", "routed_calls", "routed_pro_calls", "routed_pro_default_calls", "primary_calls", "triage_calls",
    "escalation_calls", "output_tokens", "cap_known_calls", "uncapped_calls", "cost_usd", "unpriced_calls",
]


@dataclass(frozen=True)
class WindowBounds:
    """[start, end) of each window the rules read, for a cycle at `now`."""

    end: dt.datetime
    last_24h: dt.datetime
    before_24h: dt.datetime
    last_7d: dt.datetime
    before_7d: dt.datetime

    @classmethod
    def at(cls, now: dt.datetime):
        current = hour_floor(now)
        return cls(end=current + HOUR,
                   last_24h=current - WINDOW_24H, before_24h=current - WINDOW_24H - WINDOW_28D,
                   last_7d=current - WINDOW_7D, before_7d=current - WINDOW_7D - WINDOW_28D)


@dataclass
class FeatureWindows:
    feature_id: int
    last_24h: Window
    before_24h: Window  # the 28 days before the last 24 h (baseline of unbounded_output, spend_spike)
    last_7d: Window
    before_7d: Window  # the 28 days before the last 7 days (baseline of share_drift)


# The four windows overlap, so the table is read once and summed per (feature, day counted
# from the start of the oldest window); the windows are then sums of those day rows (36 per
# feature). Every window edge falls on a day edge (6, 28 and 34 days after the start): days
# 0-27 are before_7d, 6-33 before_24h, 28-35 last_7d and 34-35 (the 24 full hours before the
# current one, and the current hour) last_24h. Counts are cast to bigint so they arrive as
# ints; only money stays NUMERIC.
WINDOW_DAYS = {"last_24h": (34, 36), "before_24h": (6, 34), "last_7d": (28, 36), "before_7d": (0, 28)}


def _sum_sql(name: str, inner: bool) -> str:
    cast = "" if name == "cost_usd" else "::bigint"
    return f"SUM({name}){cast} AS {name}" if inner else f"COALESCE(SUM({name}) FILTER (WHERE day >= %s AND day < %s), 0){cast}"


def feature_windows(*, project, now: dt.datetime, environment: str | None) -> dict[int, FeatureWindows]:
    """Every feature's four windows in ONE pass over FeatureHour (the narrow table for rules)."""
    bounds = WindowBounds.at(now)
    inner_sums = ", ".join(_sum_sql(name, inner=True) for name in WINDOW_FIELDS)
    outer = [_sum_sql(name, inner=False) for _ in WINDOW_DAYS for name in WINDOW_FIELDS]
    outer.append("COUNT(*) FILTER (WHERE day >= 6 AND day < 34 AND calls > 0)")  # baseline days with calls
    env_clause = "AND environment = %s" if environment is not None else ""
    sql = (f"SELECT feature_id, {', '.join(outer)} FROM ("
           f" SELECT feature_id, EXTRACT(DAY FROM hour - %s)::int AS day, {inner_sums}"
           f" FROM {FeatureHour._meta.db_table}"
           f" WHERE project_id = %s {env_clause} AND hour >= %s AND hour < %s GROUP BY 1, 2"
           f") AS days GROUP BY feature_id")
    params = [bound for bounds_ in WINDOW_DAYS.values() for _ in WINDOW_FIELDS for bound in bounds_]
    params += [bounds.before_7d, project.pk, *([environment] if environment is not None else []),
               bounds.before_7d, bounds.end]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n = len(WINDOW_FIELDS)
    result = {}
    for feature_id, *values in rows:
        windows = {name: Window(**dict(zip(WINDOW_FIELDS, values[i * n:(i + 1) * n], strict=True)))
                   for i, name in enumerate(WINDOW_DAYS)}
        windows["before_24h"].active_days = values[-1]
        result[feature_id] = FeatureWindows(feature_id=feature_id, **windows)
    return result


def unpriced_calls_by_model(*, project, now: dt.datetime, environment: str | None) -> dict[str, int]:
    bounds = WindowBounds.at(now)
    rows = HourlyRollup.objects.filter(project=project, hour__gte=bounds.last_24h, hour__lt=bounds.end,
                                       unpriced_calls__gt=0)
    if environment is not None:
        rows = rows.filter(environment=environment)
    return {r["model"]: int(r["n"]) for r in rows.values("model").annotate(n=Sum("unpriced_calls"))}


# --- budgets ----------------------------------------------------------------------------

def budget_period(*, project, period: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the current day / week (from Monday) / month in the project's timezone."""
    tz = project.tzinfo
    local = now.astimezone(tz)
    day = local.date()
    if period == "day":
        start_day, end_day = day, day + dt.timedelta(days=1)
    elif period == "week":
        start_day = day - dt.timedelta(days=day.weekday())
        end_day = start_day + dt.timedelta(days=7)
    else:
        start_day = day.replace(day=1)
        end_day = (start_day + dt.timedelta(days=32)).replace(day=1)
    start, end = day_start(start_day, tz), day_start(end_day, tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _dimension_days(rule: Rule, start: dt.datetime, end: dt.datetime):
    (dimension, _), = rule.dimension.items()
    tz = rule.project.tzinfo
    rows = DimensionDay.objects.filter(project_id=rule.project_id, dimension=dimension,
                                       day__gte=start.astimezone(tz).date(), day__lt=end.astimezone(tz).date())
    if rule.feature_id:
        rows = rows.filter(feature_id=rule.feature_id)
    if rule.environment is not None:
        rows = rows.filter(environment=rule.environment)
    return rows


def budget_spent_by_value(*, rule: Rule, start: dt.datetime, end: dt.datetime,
                          at_least: Decimal | None = None) -> dict[str, Decimal]:
    """Spend per value of a per-value budget's dimension in [start, end), only of the values that
    spent `at_least` (one grouped query over the daily dimension rollup, however many values)."""
    if rule.awaited_feature:
        return {}  # its feature has sent no events yet
    rows = _dimension_days(rule, start, end).values("value").annotate(spent=Sum("cost_usd"))
    if at_least is not None:
        rows = rows.filter(spent__gte=at_least)
    return {value: spent or Decimal(0) for value, spent in rows.values_list("value", "spent")}


def budget_spent(*, rule: Rule, start: dt.datetime, end: dt.datetime, value: str | None = None) -> Decimal:
    """Spend of a budget's scope in [start, end): hourly rollups, or daily ones for a dimension
    (of `value` for a per-value budget; of the rule's own value otherwise)."""
    if rule.awaited_feature:
        return Decimal(0)  # its feature has sent no events yet
    if rule.dimension:
        (_, own_value), = rule.dimension.items()
        rows = _dimension_days(rule, start, end).filter(value=str(value if rule.is_per_value else own_value))
        return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
    rows = HourlyRollup.objects.filter(project_id=rule.project_id, hour__gte=start, hour__lt=end)
    if rule.model:
        rows = rows.filter(model=rule.model)
    if rule.tier:
        rows = rows.filter(tier=rule.tier)
    if rule.feature_id:
        rows = rows.filter(feature_id=rule.feature_id)
    if rule.environment is not None:
        rows = rows.filter(environment=rule.environment)
    return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)


def feature_models_and_tiers(*, project, feature, since: dt.datetime) -> tuple[set[str], set[str]]:
    rows = HourlyRollup.objects.filter(project=project, feature=feature, hour__gte=since)
    pairs = set(rows.values_list("model", "tier").distinct())
    return {m for m, _ in pairs}, {t for _, t in pairs}


def budget_rules_covering(*, project, feature_name: str | None, dimension_value: tuple[str, str] | None,
                          now: dt.datetime) -> list[Rule]:
    """The budgets an app asks about before a call: those on the feature (seen yet or not), its
    models or tiers (seen in the last 35 days) or the whole project; with a dimension value,
    also the budgets on that value and the per-value ("*") budgets of its dimension."""
    rules = Rule.objects.filter(project=project, kind=KIND_SPEND_BUDGET, enabled=True)
    no_feature = Q(feature__isnull=True, awaited_feature="")
    covering = Q(dimension__isnull=True) & no_feature & Q(model="", tier="")
    feature = project.features.filter(name=feature_name).first() if feature_name else None
    on_feature = Q(awaited_feature=feature_name) if feature_name else Q(pk__in=[])
    if feature is not None:
        on_feature |= Q(feature=feature)
        models, tiers = feature_models_and_tiers(project=project, feature=feature, since=now - WINDOW_35D)
        covering |= Q(dimension__isnull=True) & no_feature & (
            (Q(model__in=models) & (Q(tier="") | Q(tier__in=tiers))) | (Q(model="") & Q(tier__in=tiers)))
    covering |= Q(dimension__isnull=True) & on_feature
    if dimension_value is not None:
        dimension, value = dimension_value
        on_value = Q(dimension={dimension: value}) | Q(dimension={dimension: EVERY_VALUE})
        covering |= on_value & (no_feature | on_feature)
    return list(rules.filter(covering).select_related("project", "feature").order_by("id"))


def value_budget_rules(*, project, dimension: str, values: list[str]) -> list[Rule]:
    """Enabled budgets on one of `values` of `dimension`, or on each of its values ("*")."""
    on_values = Q(dimension={dimension: EVERY_VALUE})
    for value in values:
        on_values |= Q(dimension={dimension: value})
    return list(Rule.objects.filter(on_values, project=project, kind=KIND_SPEND_BUDGET, enabled=True)
                .select_related("project", "feature").order_by("id"))


# --- alerts and deliveries --------------------------------------------------------------

def open_alerts(*, project):
    """Alerts that are not resolved (open or acknowledged), newest first: for the Overview page."""
    return (Alert.objects.filter(project=project).exclude(state=Alert.RESOLVED)
            .select_related("project", "rule").order_by("-opened_at", "-id"))


def alerts_list(*, project, state: str | None = None):
    alerts = Alert.objects.filter(project=project).select_related("project", "rule")
    return alerts.filter(state=state) if state else alerts


def recent_deliveries(*, channel, limit: int = 20):
    return list(Delivery.objects.filter(channel=channel).select_related("notice__alert")
                .order_by("-created_at", "-id")[:limit])


# --- daily digest -------------------------------------------------------------------------

def digest_numbers(*, project, day: dt.date) -> dict:
    """For the digest of `day` (local): its spend, month to date, and features that moved most
    against their mean of the 7 days before (FeatureDay, the daily rollup)."""
    rows = FeatureDay.objects.filter(project=project, day__gte=min(day - WINDOW_7D, day.replace(day=1)),
                                     day__lte=day)
    by_feature: dict[str, list[Decimal]] = {}
    day_total = month_total = Decimal(0)
    for name, row_day, cost in rows.values_list("feature__name", "day").annotate(cost=Sum("cost_usd")):
        cost = cost or Decimal(0)
        by_feature.setdefault(name, [Decimal(0), Decimal(0)])
        if row_day == day:
            by_feature[name][0] += cost
            day_total += cost
        elif row_day >= day - WINDOW_7D:
            by_feature[name][1] += cost
        if row_day >= day.replace(day=1):
            month_total += cost
    movers = sorted(
        ({"feature": name, "cost_usd": today, "mean_7d_usd": before / 7, "change_usd": today - before / 7}
         for name, (today, before) in by_feature.items()),
        key=lambda m: abs(m["change_usd"]), reverse=True)
    return {"day": day, "spend_usd": day_total, "month_to_date_usd": month_total, "top_movers": movers[:5]}

"""The rule cycle: make sure the project's default rules exist, then turn rollup numbers into
verdicts (budgets.rules, pure) for every rule and scope, and hand them to the alert lifecycle.
"""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from ingest.models import Feature

from .. import rules as rule_functions
from .. import selectors
from ..models import (
    DEFAULT_KINDS,
    FEATURE_KINDS,
    KIND_SPEND_BUDGET,
    KIND_UNPRICED_TRAFFIC,
    RULE_KINDS,
    ProjectRulesState,
    Rule,
)
from ..rules import Verdict, Window
from .lifecycle import Evaluation, alerts_apply


def default_rules_ensure(*, project, now=None) -> int:
    """Create the project's default rules once, from its first event (first Feature) on."""
    if ProjectRulesState.objects.filter(project=project).exists():
        return 0
    if not Feature.objects.filter(project=project).exists():
        return 0
    with transaction.atomic():
        created = Rule.objects.bulk_create(
            [Rule(project=project, kind=kind, is_default=True, params=rule_functions.defaults(kind))
             for kind in DEFAULT_KINDS],
            ignore_conflicts=True,
        )
        ProjectRulesState.objects.get_or_create(project=project,
                                                defaults={"defaults_created_at": now or timezone.now()})
    return len(created)


def rules_evaluate(*, project, now=None) -> list[Evaluation]:
    """One rule cycle for one project: verdicts for every rule and scope, then the alert lifecycle."""
    now = now or timezone.now()
    default_rules_ensure(project=project, now=now)
    evaluations = project_verdicts(project=project, now=now)
    alerts_apply(project=project, evaluations=evaluations, now=now)
    return evaluations


def rules_bind_awaited_features(*, project, rules, features_by_name) -> list[Rule]:
    """Bind rules named before their feature's first event to the feature once it exists;
    returns the rules that apply now (those still waiting apply from that first event)."""
    applying = []
    for rule in rules:
        if rule.awaited_feature:
            feature = features_by_name.get(rule.awaited_feature)
            if feature is None:
                continue
            # Conditional: a concurrent cycle or an edit may have bound or renamed it meanwhile.
            Rule.objects.filter(pk=rule.pk, awaited_feature=rule.awaited_feature).update(feature=feature,
                                                                                        awaited_feature="")
            rule.feature, rule.awaited_feature = feature, ""
        applying.append(rule)
    return applying


def project_verdicts(*, project, now) -> list[Evaluation]:
    features = {f.pk: f for f in Feature.objects.filter(project=project)}
    rules = rules_bind_awaited_features(
        project=project, rules=list(Rule.objects.filter(project=project).select_related("feature", "project")),
        features_by_name={f.name: f for f in features.values()})
    windows_by_env = {}

    def windows(environment):
        if environment not in windows_by_env:
            windows_by_env[environment] = selectors.feature_windows(project=project, now=now, environment=environment)
        return windows_by_env[environment]

    evaluations = []
    for kind in [k for k, _ in RULE_KINDS if k in FEATURE_KINDS]:  # a stable order for evaluate_rules
        kind_rules = [r for r in rules if r.kind == kind]
        # A feature-scoped rule (even a disabled one) replaces the project rule of its kind for that feature.
        replaced = {r.feature_id for r in kind_rules if r.feature_id}
        for rule in (r for r in kind_rules if r.enabled):
            data = windows(rule.environment)
            feature_ids = [rule.feature_id] if rule.feature_id else [fid for fid in data if fid not in replaced]
            for feature_id in feature_ids:
                feature = features.get(feature_id)
                if feature is None or feature.muted:
                    continue
                verdict = feature_verdict(rule=rule, feature=feature, windows=data.get(feature_id))
                evaluations.append(Evaluation(rule=rule, scope={"feature": feature.name},
                                              key=f"feature={feature.name}", verdict=verdict, feature=feature))
    for rule in rules:
        if rule.enabled and rule.kind == KIND_UNPRICED_TRAFFIC:
            by_model = selectors.unpriced_calls_by_model(project=project, now=now, environment=rule.environment)
            evaluations.append(Evaluation(rule=rule, scope={}, key="project",
                                          verdict=rule_functions.unpriced_traffic(unpriced_calls_by_model=by_model)))
        elif rule.enabled and rule.kind == KIND_SPEND_BUDGET and not (rule.feature and rule.feature.muted):
            if rule.is_per_value:
                evaluations.extend(budget_value_evaluations(rule=rule, now=now))
            else:
                evaluations.append(budget_evaluation(rule=rule, now=now))
    return evaluations


def feature_verdict(*, rule, feature, windows) -> Verdict:
    if windows is None:
        windows = selectors.FeatureWindows(feature.pk, Window(), Window(), Window(), Window())
    params = rule.params
    match rule.kind:
        case "unbounded_output":
            return rule_functions.unbounded_output(last_24h=windows.last_24h, baseline=windows.before_24h,
                                                   params=params)
        case "pro_default":
            return rule_functions.pro_default(last_24h=windows.last_24h, params=params,
                                              expected_pro_share=feature.expected_pro_share)
        case "share_drift":
            return rule_functions.share_drift(last_7d=windows.last_7d, baseline_28d=windows.before_7d,
                                              params=params)
        case "escalation_band":
            return rule_functions.escalation_band(last_7d=windows.last_7d, params=params)
        case "spend_spike":
            return rule_functions.spend_spike(last_24h=windows.last_24h, baseline_28d=windows.before_24h,
                                              params=params)
    raise ValueError(f"not a feature rule: {rule.kind}")


def budget_numbers(*, rule, now, value=None) -> tuple[Verdict, dt.datetime, dt.datetime]:
    """A budget's verdict now (for a per-value budget: of `value`)."""
    start, end, elapsed = budget_period_elapsed(rule=rule, now=now)
    spent = selectors.budget_spent(rule=rule, start=start, end=end, value=value)
    verdict = rule_functions.spend_budget(spent_usd=spent, elapsed_fraction=elapsed, params=rule.params)
    verdict.numbers["period_start"] = start.isoformat()
    return verdict, start, end


def budget_evaluation(*, rule, now, scope=None, verdict_and_period=None) -> Evaluation:
    verdict, start, end = verdict_and_period or budget_numbers(rule=rule, now=now)
    scope = scope or rule.scope()
    scope_key = ",".join(f"{k}={v}" for k, v in sorted(scope.items())) or "project"
    return Evaluation(rule=rule, scope=scope, feature=rule.feature, period_start=start, period_end=end,
                      key=f"{scope_key}|{start.isoformat()}|{verdict.level}", verdict=verdict)


def budget_period_elapsed(*, rule, now) -> tuple[dt.datetime, dt.datetime, float]:
    start, end = selectors.budget_period(project=rule.project, period=rule.params["period"], now=now)
    return start, end, max(0.0, min(1.0, (now - start) / (end - start)))


def budget_values_over(*, rule, now) -> tuple[dict[str, Verdict], dt.datetime, dt.datetime]:
    """A per-value budget's verdicts, one per value of its dimension that reached a threshold.
    Values below the lowest threshold never become verdicts: 100,000 customers stay one
    grouped query and a handful of objects."""
    start, end, elapsed = budget_period_elapsed(rule=rule, now=now)
    floor = rule_functions.spend_budget_floor(elapsed_fraction=elapsed, params=rule.params)
    if floor is None:
        return {}, start, end
    (dimension, _), = rule.dimension.items()
    over = {}
    for value, spent in selectors.budget_spent_by_value(rule=rule, start=start, end=end, at_least=floor).items():
        verdict = rule_functions.spend_budget(spent_usd=spent, elapsed_fraction=elapsed, params=rule.params)
        if verdict.fired:
            verdict.numbers.update(period_start=start.isoformat(), dimension=dimension, value=value)
            verdict.message = f"{dimension} {value}: {verdict.message}"
            over[value] = verdict
    return over, start, end


def budget_value_evaluations(*, rule, now) -> list[Evaluation]:
    """One evaluation per offending value, keyed and scoped by the value (its own alert)."""
    over, start, end = budget_values_over(rule=rule, now=now)
    (dimension, _), = rule.dimension.items()
    return [budget_evaluation(rule=rule, now=now, scope={**rule.scope(), "dimension": {dimension: value}},
                              verdict_and_period=(verdict, start, end))
            for value, verdict in sorted(over.items())]


def budget_value_counts(*, rule, now) -> dict[int, int]:
    """How many values of a per-value budget have crossed each threshold (for the Rules page)."""
    over, _start, _end = budget_values_over(rule=rule, now=now)
    return {threshold: sum(1 for v in over.values() if v.level >= threshold)
            for threshold in rule.params["thresholds"]}

"""Writes for rules, alerts, channels and deliveries; the rule cycle (SPEC 5).

The cycle: make sure the project's default rules exist, turn rollup numbers into verdicts
(budgets.rules, pure), then move alerts through open -> acknowledged -> resolved with
conditional UPDATEs. Every notice (opened, reminder, resolved) writes one Delivery row
per matching channel in the same transaction; `deliveries_send_due` sends them.
"""

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from costwatch.projects.services import audit_record
from ingest.models import Feature

from . import rules as rule_functions
from . import selectors
from .models import (
    DEFAULT_KINDS,
    FEATURE_KINDS,
    KIND_SPEND_BUDGET,
    KIND_UNPRICED_TRAFFIC,
    RULE_KINDS,
    Alert,
    Channel,
    Delivery,
    Notice,
    ProjectRulesState,
    Rule,
)
from .rules import Verdict, Window
from .transports import TRANSPORTS, OutgoingMessage, TransportError

logger = logging.getLogger(__name__)
CLAIM_LEASE = dt.timedelta(minutes=5)  # a worker that dies mid-send leaves the row due again after this


# --- default rules ----------------------------------------------------------------------

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


# --- the cycle --------------------------------------------------------------------------

@dataclass
class Evaluation:
    """One rule applied to one scope in one cycle."""

    rule: Rule
    scope: dict
    key: str
    verdict: Verdict
    feature: Feature | None = None
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None

    @property
    def kind(self):
        return self.rule.kind


def evaluate_project(*, project, now=None) -> list[Evaluation]:
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


# --- alert lifecycle ----------------------------------------------------------------------

def alerts_apply(*, project, evaluations, now) -> None:
    # One read of the unresolved alerts; every state change below is still a conditional UPDATE,
    # so a concurrent cycle working from the same snapshot cannot notify twice. One transaction:
    # a per-value budget can fire for a thousand customers, and a commit per alert cost ~7 ms each.
    with transaction.atomic():
        _alerts_apply(project=project, evaluations=evaluations, now=now)


def _alerts_apply(*, project, evaluations, now) -> None:
    unresolved = {(a.rule_id, a.key): a for a in
                  Alert.objects.filter(project=project).exclude(state=Alert.RESOLVED).select_related("rule", "feature")}
    fired_keys, fired_again = set(), []
    for evaluation in evaluations:
        if evaluation.verdict.fired:
            key = (evaluation.rule.pk, evaluation.key)
            fired_keys.add(key)
            if key in unresolved:
                fired_again.append((unresolved[key], evaluation))
            else:
                alert_fire(evaluation=evaluation, now=now, alert=None)
    alerts_refresh(fired_again, now=now)
    for key, alert in unresolved.items():
        if alert.feature is not None and alert.feature.muted:
            # Muting a feature means no alerts: its open ones close without a resolve message.
            alerts_close_silently(Alert.objects.filter(pk=alert.pk), now=now)
        elif alert.is_spend:
            # Spend alerts stay open for their period, then close silently.
            if alert.period_end <= now or alert.rule is None or not alert.rule.enabled:
                alerts_close_silently(Alert.objects.filter(pk=alert.pk), now=now)
        elif key not in fired_keys:
            alert_clear(alert=alert, now=now)


def alerts_close_silently(alerts, *, now) -> int:
    """Resolve the unresolved ones of `alerts` without a resolve notice (muted feature, ended
    budget period, deleted rule); their history stays."""
    return alerts.exclude(state=Alert.RESOLVED).update(state=Alert.RESOLVED, resolved_at=now)


NOT_LOADED = object()


def alerts_refresh(fired_again: list[tuple[Alert, "Evaluation"]], *, now) -> None:
    """Alerts that fired again: their numbers in one statement per 500, then a reminder for each
    open one whose cooldown has passed (claimed by a conditional UPDATE, as in alert_fire)."""
    for alert, evaluation in fired_again:
        alert.last_fired_at, alert.clear_since = now, None
        alert.numbers, alert.message = evaluation.verdict.numbers, evaluation.verdict.message
    Alert.objects.bulk_update([alert for alert, _ in fired_again],
                              ["last_fired_at", "clear_since", "numbers", "message"], batch_size=500)
    for alert, evaluation in fired_again:
        alert_remind_if_due(alert=alert, rule=evaluation.rule, now=now)


def alert_remind_if_due(*, alert, rule, now) -> None:
    due = now - dt.timedelta(hours=rule.cooldown_hours)
    if alert.state == Alert.OPEN and alert.last_notified_at <= due:
        with transaction.atomic():
            if Alert.objects.filter(pk=alert.pk, state=Alert.OPEN, last_notified_at__lte=due).update(
                    last_notified_at=now):
                notice_create(alert=alert, type=Notice.REMINDER, now=now)


def alert_fire(*, evaluation, now, alert=NOT_LOADED) -> Alert | None:
    """Open the alert of this key, or refresh the open one (and remind once per cooldown)."""
    rule, verdict = evaluation.rule, evaluation.verdict
    unresolved = Alert.objects.filter(rule=rule, key=evaluation.key).exclude(state=Alert.RESOLVED)
    if alert is NOT_LOADED:
        alert = unresolved.first()
    if alert is None:
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    project=rule.project, rule=rule, kind=rule.kind, feature=evaluation.feature,
                    key=evaluation.key, scope=evaluation.scope, period_start=evaluation.period_start,
                    period_end=evaluation.period_end, level=verdict.level, state=Alert.OPEN, opened_at=now,
                    last_fired_at=now, last_notified_at=now, numbers=verdict.numbers, message=verdict.message)
                notice_create(alert=alert, type=Notice.OPENED, now=now)
            return alert
        except IntegrityError:
            # Another cycle opened it first (the partial unique index): theirs is the one to notify.
            alert = unresolved.first()
            if alert is None:
                return None
    Alert.objects.filter(pk=alert.pk).update(last_fired_at=now, clear_since=None, numbers=verdict.numbers,
                                             message=verdict.message)
    alert.numbers, alert.message, alert.clear_since = verdict.numbers, verdict.message, None
    alert_remind_if_due(alert=alert, rule=rule, now=now)
    return alert


def alert_clear(*, alert, now) -> bool:
    """The condition is clear this cycle; resolve (and notify once) when clear long enough."""
    if alert.clear_since is None:
        Alert.objects.filter(pk=alert.pk, clear_since__isnull=True).exclude(state=Alert.RESOLVED).update(
            clear_since=now)
        alert.clear_since = now
    clear_before = now - dt.timedelta(minutes=settings.ALERT_RESOLVE_AFTER_MINUTES)
    if alert.clear_since > clear_before:
        return False
    with transaction.atomic():
        resolved = (Alert.objects.filter(pk=alert.pk, clear_since__lte=clear_before)
                    .exclude(state=Alert.RESOLVED).update(state=Alert.RESOLVED, resolved_at=now))
        if resolved:
            alert.refresh_from_db()
            notice_create(alert=alert, type=Notice.RESOLVED, now=now)
    return bool(resolved)


def alert_acknowledge(*, alert, actor_label: str = "", now=None) -> bool:
    """open -> acknowledged (stops reminders); a no-op on an alert that is not open."""
    now = now or timezone.now()
    return bool(Alert.objects.filter(pk=alert.pk, state=Alert.OPEN).update(
        state=Alert.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor_label[:150]))


def channels_for_alert(alert):
    channels = Channel.objects.filter(project_id=alert.project_id, enabled=True)
    return channels.filter(Q(rules__isnull=True) | Q(rules=alert.rule_id)).distinct()


def notice_create(*, alert, type: str, now) -> Notice:
    notice = Notice.objects.create(alert=alert, type=type, created_at=now, numbers=alert.numbers,
                                   message=alert.message)
    Delivery.objects.bulk_create([
        Delivery(notice=notice, channel=channel, created_at=now, next_attempt_at=now)
        for channel in channels_for_alert(alert)
    ])
    return notice


# --- deliveries ---------------------------------------------------------------------------

def backoff_seconds(attempts: int) -> int:
    """Delay after the `attempts`-th failed attempt: the configured steps, then hourly."""
    steps = settings.DELIVERY_BACKOFF_SECONDS  # integers: settings parse the environment
    return steps[attempts - 1] if attempts <= len(steps) else 3600


def outgoing_message(notice: Notice) -> OutgoingMessage:
    alert = notice.alert
    payload = alert.as_dict()
    payload.update(numbers=notice.numbers, message=notice.message)
    return OutgoingMessage(type=notice.type, alert=payload, project_name=alert.project.name, numbers=notice.numbers)


def deliveries_claim_due(*, now=None, limit: int = 200) -> list[tuple[int, dt.datetime]]:
    """Claim due deliveries, each by a conditional UPDATE that also leases it for CLAIM_LEASE:
    two sweepers never send one row twice, and a row whose sender died becomes due again.
    Returns (delivery id, lease end): the lease end is the claim's token."""
    now = now or timezone.now()
    due = (Delivery.objects.filter(status=Delivery.PENDING, next_attempt_at__lte=now)
           .order_by("next_attempt_at", "id").values_list("id", "next_attempt_at")[:limit])
    claimed = []
    lease_end = now + CLAIM_LEASE
    for delivery_id, next_attempt_at in list(due):
        if Delivery.objects.filter(pk=delivery_id, status=Delivery.PENDING, next_attempt_at=next_attempt_at).update(
                next_attempt_at=lease_end, attempts=F("attempts") + 1):
            claimed.append((delivery_id, lease_end))
    return claimed


def deliveries_send_due(*, now=None, limit: int = 200) -> int:
    """Claim and send every due delivery in this process; returns how many were sent."""
    now = now or timezone.now()
    return sum(delivery_attempt(delivery_id=delivery_id, lease_end=lease_end, now=now)
               for delivery_id, lease_end in deliveries_claim_due(now=now, limit=limit))


def delivery_attempt(*, delivery_id: int, lease_end: dt.datetime | None, now) -> bool:
    """Send one claimed delivery, only while this claim still holds it: a row whose lease ran
    out and was claimed again (or was settled meanwhile) is left to its new holder. (None:
    a task queued before claims carried their lease end; only the pending state is checked.)"""
    rows = Delivery.objects.filter(pk=delivery_id, status=Delivery.PENDING)
    if lease_end is not None:
        rows = rows.filter(next_attempt_at=lease_end)
    delivery = rows.select_related("channel", "notice__alert__project").first()
    if delivery is None:
        logger.info("delivery %s: claim no longer held, not sent", delivery_id)
        return False
    try:
        TRANSPORTS[delivery.channel.kind](delivery.channel).notify(outgoing_message(delivery.notice))
    except TransportError as exc:
        delivery_failed(rows, delivery=delivery, error=exc.message, permanent=exc.permanent, now=now)
        return False
    except Exception as exc:  # a bug must not stop the sweep; it is retried and shown like any failure
        logger.exception("delivery %s crashed", delivery_id)
        delivery_failed(rows, delivery=delivery, error=f"internal error: {exc!r}", permanent=False, now=now)
        return False
    rows.update(status=Delivery.SENT, sent_at=now, last_error="", next_attempt_at=None)
    return True


def delivery_failed(rows, *, delivery, error, permanent, now) -> None:
    """Record a failed attempt on `rows` (the delivery while this claim holds it)."""
    next_attempt_at = now + dt.timedelta(seconds=backoff_seconds(delivery.attempts))
    too_old = next_attempt_at - delivery.created_at > dt.timedelta(seconds=settings.DELIVERY_MAX_AGE_SECONDS)
    if permanent or too_old:
        reason = error if permanent else f"gave up after {delivery.attempts} attempts: {error}"
        rows.update(status=Delivery.FAILED, permanent=permanent, last_error=reason[:2000], next_attempt_at=None)
        logger.warning("delivery %s to channel %s failed for good: %s", delivery.pk, delivery.channel_id, reason)
    else:
        rows.update(last_error=error[:2000], next_attempt_at=next_attempt_at)


def sample_alert(*, project) -> Alert:
    """An unsaved alert that looks like a real one, for the channels' Test button."""
    feature = Feature.objects.filter(project=project).order_by("name").first()
    name = feature.name if feature else "example-feature"
    numbers = {"calls_24h": 1200, "uncapped_calls_24h": 180, "uncapped_share": 0.15, "uncapped_share_threshold": 0.05}
    now = timezone.now()
    return Alert(project=project, kind="unbounded_output", feature=feature, key=f"feature={name}",
                 scope={"feature": name}, state=Alert.OPEN, opened_at=now, last_fired_at=now, last_notified_at=now,
                 numbers=numbers, message=f"Test from costwatch: 15.0% of {name}'s calls set no output cap "
                                          f"(threshold 5.0%). This is a sample; nothing is wrong.")


def channel_test_request(*, channel, now=None) -> None:
    """The Test button: the worker sends (never the web process, which must not wait on a
    stranger's server); the page shows the outcome once `channel_test` has recorded it."""
    from .tasks import send_channel_test  # tasks import this module

    now = now or timezone.now()
    Channel.objects.filter(pk=channel.pk).update(test_requested_at=now)
    transaction.on_commit(lambda: send_channel_test.delay(channel.pk))


def channel_test(*, channel, now=None) -> str:
    """Send a real message built from an unsaved sample alert; returns '' or the error."""
    alert = sample_alert(project=channel.project)
    message = OutgoingMessage(type="test", alert={**alert.as_dict(), "id": None}, project_name=channel.project.name,
                              numbers=alert.numbers)
    error = ""
    try:
        TRANSPORTS[channel.kind](channel).notify(message)
    except TransportError as exc:
        error = exc.message + (" (permanent)" if exc.permanent else " (transient)")
    Channel.objects.filter(pk=channel.pk).update(last_test_at=now or timezone.now(), last_test_error=error)
    return error


# --- rules and channels (with the audit log) -----------------------------------------------

RULE_FIELDS = ["kind", "feature", "model", "tier", "environment", "dimension", "params", "cooldown_hours", "enabled"]
CHANNEL_FIELDS = ["kind", "name", "enabled", "rules"]


def rule_snapshot(rule) -> dict:
    return {"kind": rule.kind, "feature": rule.feature_name, "model": rule.model,
            "tier": rule.tier, "environment": rule.environment, "dimension": rule.dimension, "params": rule.params,
            "cooldown_hours": rule.cooldown_hours, "enabled": rule.enabled}


def channel_snapshot(channel) -> dict:
    # Never the target or secret: the audit log is readable by every admin.
    return {"kind": channel.kind, "name": channel.name, "enabled": channel.enabled,
            "rules": sorted(channel.rules.values_list("id", flat=True)) if channel.pk else []}


def rule_create(*, project, data: dict, actor=None, actor_label: str = "") -> Rule:
    with transaction.atomic():
        rule = Rule.objects.create(project=project, **data)
        audit_record(project=project, actor=actor, actor_label=actor_label, action="create", target_type="rule",
                     target_id=rule.pk, after=rule_snapshot(rule))
    return rule


def rule_update(*, rule, data: dict, actor=None, actor_label: str = "") -> Rule:
    before = rule_snapshot(rule)
    with transaction.atomic():
        for name, value in data.items():
            setattr(rule, name, value)
        rule.save()
        audit_record(project=rule.project, actor=actor, actor_label=actor_label, action="update", target_type="rule",
                     target_id=rule.pk, before=before, after=rule_snapshot(rule))
    return rule


def rule_delete(*, rule, actor=None, actor_label: str = "", now=None) -> None:
    """Delete a rule; its unresolved alerts close silently (their history stays)."""
    with transaction.atomic():
        alerts_close_silently(Alert.objects.filter(rule=rule), now=now or timezone.now())
        audit_record(project=rule.project, actor=actor, actor_label=actor_label, action="delete", target_type="rule",
                     target_id=rule.pk, before=rule_snapshot(rule))
        rule.delete()


def channel_create(*, project, data: dict, actor=None, actor_label: str = "") -> Channel:
    rules = data.pop("rules", [])
    with transaction.atomic():
        channel = Channel.objects.create(project=project, **data)
        channel.rules.set(rules)
        audit_record(project=project, actor=actor, actor_label=actor_label, action="create", target_type="channel",
                     target_id=channel.pk, after=channel_snapshot(channel))
    return channel


def channel_update(*, channel, data: dict, actor=None, actor_label: str = "") -> Channel:
    before = channel_snapshot(channel)
    rules = data.pop("rules", None)
    with transaction.atomic():
        for name, value in data.items():
            setattr(channel, name, value)
        channel.save()
        if rules is not None:
            channel.rules.set(rules)
        after = channel_snapshot(channel)
        if "target" in data or "secret" in data:
            after["target_or_secret_changed"] = True
        audit_record(project=channel.project, actor=actor, actor_label=actor_label, action="update",
                     target_type="channel", target_id=channel.pk, before=before, after=after)
    return channel


def channel_delete(*, channel, actor=None, actor_label: str = "") -> None:
    with transaction.atomic():
        audit_record(project=channel.project, actor=actor, actor_label=actor_label, action="delete",
                     target_type="channel", target_id=channel.pk, before=channel_snapshot(channel))
        channel.delete()


# --- budget guard -------------------------------------------------------------------------

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


# --- daily digest -------------------------------------------------------------------------

def digests_send_due(*, now=None) -> int:
    """At DIGEST_LOCAL_HOUR in each project's timezone, email yesterday's digest once per day."""
    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.template.loader import render_to_string

    from costwatch.projects.models import Project

    from .models import DigestSent
    from .transports import send_email

    now = now or timezone.now()
    sent = 0
    for project in Project.objects.all():
        local = now.astimezone(project.tzinfo)
        # From the digest hour on (not only during it): a late or skipped hourly check still sends;
        # the (project, day) row keeps it to once a day.
        if local.hour < settings.DIGEST_LOCAL_HOUR:
            continue
        recipients = sorted({address for c in Channel.objects.filter(project=project, kind=Channel.EMAIL,
                                                                      enabled=True)
                             for address in Channel.email_addresses(c.target)})
        if not recipients:
            continue
        try:
            with transaction.atomic():
                DigestSent.objects.create(project=project, day=local.date(), sent_at=now, recipients=",".join(recipients))
        except IntegrityError:
            continue  # already sent today (or another worker is sending it)
        numbers = selectors.digest_numbers(project=project, day=local.date() - dt.timedelta(days=1))
        context = {"project": project, "site_url": settings.SITE_URL, **numbers,
                   "open_alerts": list(selectors.open_alerts(project=project)[:20])}
        email = EmailMultiAlternatives(
            f"[costwatch] {project.name}: ${numbers['spend_usd']:.2f} on {numbers['day']:%a %d %b}",
            render_to_string("emails/digest.txt", context), settings.DEFAULT_FROM_EMAIL, recipients,
            connection=get_connection(timeout=settings.EMAIL_TIMEOUT))
        email.attach_alternative(render_to_string("emails/digest.html", context), "text/html")
        try:
            send_email(email)
            sent += 1
        except TransportError as exc:
            logger.warning("digest for %s not sent: %s", project.slug, exc.message)
            if not exc.permanent:  # let the next check try again today
                DigestSent.objects.filter(project=project, day=local.date()).delete()
    return sent

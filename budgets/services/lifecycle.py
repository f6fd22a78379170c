"""The alert lifecycle: open -> acknowledged -> resolved, each move a conditional UPDATE. Every
notice (opened, reminder, resolved) writes one Delivery row per matching channel in the same
transaction.
"""

import datetime as dt
import json
from dataclasses import dataclass

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ingest.models import Feature

from ..models import Alert, Channel, Delivery, Notice, Rule
from ..rules import Verdict


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


def alerts_apply(*, project, evaluations, now) -> None:
    # One read of the unresolved alerts; every state change below is still a conditional UPDATE,
    # so a concurrent cycle working from the same snapshot cannot notify twice. One transaction:
    # a per-value budget can fire for a thousand customers, and a commit per alert cost ~7 ms each.
    with transaction.atomic():
        _alerts_apply(project=project, evaluations=evaluations, now=now)


def _alerts_apply(*, project, evaluations, now) -> None:
    unresolved = {(a.rule_id, a.key): a for a in
                  Alert.objects.filter(project=project).exclude(state=Alert.RESOLVED).select_related("rule", "feature")}
    fired_keys, fired_again, to_open = set(), [], []
    for evaluation in evaluations:
        if evaluation.verdict.fired:
            key = (evaluation.rule.pk, evaluation.key)
            fired_keys.add(key)
            if key in unresolved:
                fired_again.append((unresolved[key], evaluation))
            else:
                to_open.append(evaluation)
    for evaluation in alerts_open(to_open, now=now):
        # Another cycle opened this key first (the partial unique index): theirs is the one that
        # notified; this cycle refreshes its numbers.
        alert = Alert.objects.filter(rule=evaluation.rule, key=evaluation.key).exclude(state=Alert.RESOLVED).first()
        if alert is not None:
            fired_again.append((alert, evaluation))
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


def alerts_open(evaluations: list[Evaluation], *, now) -> list[Evaluation]:
    """Open one alert per evaluation with one INSERT ... ON CONFLICT DO NOTHING per 500 (a per-value
    budget may open a thousand at once), then their notices and deliveries in bulk. Returns the
    evaluations whose key another cycle opened meanwhile: that cycle notifies, not this one."""
    opened = {}
    for start in range(0, len(evaluations), 500):
        opened.update(_alerts_insert(evaluations[start:start + 500], now=now))
    alerts = [Alert(pk=opened[(e.rule.pk, e.key)], project=e.rule.project, rule=e.rule, kind=e.rule.kind,
                    feature=e.feature, key=e.key, scope=e.scope, period_start=e.period_start,
                    period_end=e.period_end, level=e.verdict.level, state=Alert.OPEN, opened_at=now,
                    last_fired_at=now, last_notified_at=now, numbers=e.verdict.numbers, message=e.verdict.message)
              for e in evaluations if (e.rule.pk, e.key) in opened]
    notices_create(alerts=alerts, type=Notice.OPENED, now=now)
    return [e for e in evaluations if (e.rule.pk, e.key) not in opened]


_ALERT_INSERT_COLUMNS = ["project_id", "rule_id", "kind", "feature_id", "key", "scope", "period_start",
                         "period_end", "level", "state", "opened_at", "acknowledged_by", "last_fired_at",
                         "last_notified_at", "numbers", "message"]


def _alerts_insert(evaluations, *, now) -> dict[tuple[int, str], int]:
    """{(rule id, key): new alert id} of the rows inserted; a key with an unresolved alert (the
    partial unique index, perhaps another cycle's row just committed) inserts nothing."""
    if not evaluations:
        return {}
    row = "(" + ", ".join("%s::jsonb" if c in ("scope", "numbers") else "%s" for c in _ALERT_INSERT_COLUMNS) + ")"
    params = []
    for e in evaluations:
        params += [e.rule.project_id, e.rule.pk, e.rule.kind, e.feature.pk if e.feature else None, e.key,
                   json.dumps(e.scope, cls=DjangoJSONEncoder), e.period_start, e.period_end, e.verdict.level,
                   Alert.OPEN, now, "", now, now, json.dumps(e.verdict.numbers, cls=DjangoJSONEncoder),
                   e.verdict.message]
    sql = (f"INSERT INTO {Alert._meta.db_table} ({', '.join(_ALERT_INSERT_COLUMNS)}) "
           f"VALUES {', '.join([row] * len(evaluations))} ON CONFLICT DO NOTHING RETURNING id, rule_id, key")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(rule_id, key): alert_id for alert_id, rule_id, key in cursor.fetchall()}


def alerts_close_silently(alerts, *, now) -> int:
    """Resolve the unresolved ones of `alerts` without a resolve notice (muted feature, ended
    budget period, deleted rule); their history stays."""
    return alerts.exclude(state=Alert.RESOLVED).update(state=Alert.RESOLVED, resolved_at=now)


def alerts_refresh(fired_again: list[tuple[Alert, Evaluation]], *, now) -> None:
    """Alerts that fired again: their numbers in one statement per 500, then a reminder for each
    open one whose cooldown has passed (claimed by a conditional UPDATE)."""
    for alert, evaluation in fired_again:
        alert.last_fired_at, alert.clear_since = now, None
        alert.numbers, alert.message = evaluation.verdict.numbers, evaluation.verdict.message
    for start in range(0, len(fired_again), 1000):
        _alerts_update_numbers([alert for alert, _ in fired_again[start:start + 1000]], now=now)
    for alert, evaluation in fired_again:
        alert_remind_if_due(alert=alert, rule=evaluation.rule, now=now)


def _alerts_update_numbers(alerts: list[Alert], *, now) -> None:
    """One UPDATE ... FROM (VALUES ...) (Django's bulk_update builds a CASE per row: 5 s for 1,000)."""
    if not alerts:
        return
    params = [now]
    for alert in alerts:
        params += [alert.pk, json.dumps(alert.numbers, cls=DjangoJSONEncoder), alert.message]
    values = ", ".join(["(%s, %s::jsonb, %s)"] * len(alerts))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Alert._meta.db_table} AS a SET last_fired_at = %s, clear_since = NULL, "
                       f"numbers = v.numbers, message = v.message FROM (VALUES {values}) AS v(id, numbers, message) "
                       f"WHERE a.id = v.id", params)


def alert_remind_if_due(*, alert, rule, now) -> None:
    due = now - dt.timedelta(hours=rule.cooldown_hours)
    if alert.state == Alert.OPEN and alert.last_notified_at <= due:
        with transaction.atomic():
            if Alert.objects.filter(pk=alert.pk, state=Alert.OPEN, last_notified_at__lte=due).update(
                    last_notified_at=now):
                notice_create(alert=alert, type=Notice.REMINDER, now=now)


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


def notices_create(*, alerts: list[Alert], type: str, now) -> list[Notice]:
    """notice_create for many alerts of one project: one INSERT of notices, one of deliveries."""
    notices = Notice.objects.bulk_create([Notice(alert=alert, type=type, created_at=now, numbers=alert.numbers,
                                                 message=alert.message) for alert in alerts])
    channels_by_rule, deliveries = {}, []
    for alert, notice in zip(alerts, notices, strict=True):
        if alert.rule_id not in channels_by_rule:
            channels_by_rule[alert.rule_id] = list(channels_for_alert(alert))
        deliveries += [Delivery(notice=notice, channel=channel, created_at=now, next_attempt_at=now)
                       for channel in channels_by_rule[alert.rule_id]]
    Delivery.objects.bulk_create(deliveries)
    return notices


def notice_create(*, alert, type: str, now) -> Notice:
    notice = Notice.objects.create(alert=alert, type=type, created_at=now, numbers=alert.numbers,
                                   message=alert.message)
    Delivery.objects.bulk_create([
        Delivery(notice=notice, channel=channel, created_at=now, next_attempt_at=now)
        for channel in channels_for_alert(alert)
    ])
    return notice

"""Rule and channel writes, each with its audit-log entry."""

from django.db import transaction
from django.utils import timezone

from costwatch.projects.services import audit_record

from ..models import Alert, Channel, Rule
from .lifecycle import alerts_close_silently


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

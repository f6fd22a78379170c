"""Alerts, Rules & budgets, Channels pages. Viewers read; admins edit (404 for other projects).

Forms go through the API's serializers so a page and the API reject the same input with
the same message.
"""

import functools
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError

from costwatch.api import errors_flatten
from costwatch.pagelists import csv_response, page_list, wants_csv
from costwatch.projects.selectors import project_for_user, user_is_project_admin
from ingest.models import Feature

from . import rules as rule_functions
from . import selectors, services, tasks
from .models import RULE_KINDS, Alert, Channel, Delivery, Rule
from .serializers import ChannelInputSerializer, RuleInputSerializer


def _page_project(request, slug):
    """A page's project (404 unless a member) and whether the user is its admin; a POST to the
    page is 404 for a viewer."""
    project = project_for_user(user=request.user, slug=slug)
    is_admin = user_is_project_admin(user=request.user, project=project)
    if request.method == "POST" and not is_admin:
        project_for_user(user=request.user, slug=slug, admin=True)
    return project, is_admin


def _form_saved(request, save) -> bool:
    """Run a form's `save()` (validation through the API's serializer, then the service): show
    the message it returns, or each validation error naming its field; True when it saved."""
    try:
        text = save()
    except ValidationError as exc:
        for error in errors_flatten(exc.detail):
            messages.error(request, f"{error['field'] or 'form'}: {error['message']}")
        return False
    messages.success(request, text)
    return True


@login_required
def alerts_page(request, slug):
    project = project_for_user(user=request.user, slug=slug)
    if wants_csv(request):
        return csv_response(filename=f"{project.slug}-alerts.csv", columns=ALERT_CSV_COLUMNS,
                            rows=Alert.objects.filter(project=project).select_related("feature", "project"),
                            values=_alert_cells)
    context = {
        "project": project, "nav": "alerts", "is_admin": user_is_project_admin(user=request.user, project=project),
        **{name: page_list(request, selectors.alerts_list(project=project, state=state))
           for name, state in (("open_alerts", Alert.OPEN), ("acknowledged_alerts", Alert.ACKNOWLEDGED),
                               ("history", Alert.RESOLVED))},
    }
    return render(request, "budgets/alerts.html", context)


ALERT_CSV_COLUMNS = ["id", "kind", "rule_id", "feature", "scope", "level", "state", "opened_at", "acknowledged_at",
                     "resolved_at", "message", "url"]


def _alert_cells(alert) -> list:
    row = alert.as_dict()  # once per alert, not once per column
    return [row[column] for column in ALERT_CSV_COLUMNS]


def _admin_action(objects, page: str):
    """A project admin's POST action on one of `objects` (a model or queryset; 404 for a viewer
    or another project's object). The action does the work and returns the success message to
    show (or None); the browser goes back to `page`."""

    def decorate(action):
        @login_required
        @require_POST
        @functools.wraps(action)
        def view(request, slug, **object_id):
            project = project_for_user(user=request.user, slug=slug, admin=True)
            (pk,) = object_id.values()
            text = action(request, get_object_or_404(objects, project=project, pk=pk))
            if text:
                messages.success(request, text)
            return redirect(page, slug=slug)

        return view

    return decorate


@_admin_action(Alert, "budgets:alerts")
def alert_ack(request, alert):
    if services.alert_acknowledge(alert=alert, actor_label=request.user.get_username()):
        return "Alert acknowledged: no more reminders; it still resolves on its own."
    return None


def _rule_form_data(post) -> dict:
    data = {"kind": post.get("kind", ""), "feature": post.get("feature") or None,
            "model": post.get("model", ""), "tier": post.get("tier", ""),
            "environment": post.get("environment", "production") or None,
            "cooldown_hours": post.get("cooldown_hours") or 24, "enabled": post.get("enabled") == "on"}
    if post.get("dimension_key"):
        data["dimension"] = {post["dimension_key"]: post.get("dimension_value", "")}
    else:
        data["dimension"] = None
    raw = (post.get("params") or "").strip()
    try:
        data["params"] = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise ValidationError({"params": [f"not valid JSON: {exc.msg}"]}) from None
    return data


def _budget_row(rule, now) -> dict:
    if rule.is_per_value:
        start, end, _elapsed = services.budget_period_elapsed(rule=rule, now=now)
        return {"rule": rule, "numbers": {**rule.params, "amount_usd": rule.params["amount_usd"]},
                "per_value": services.budget_value_counts(rule=rule, now=now), "start": start, "end": end}
    verdict, start, end = services.budget_numbers(rule=rule, now=now)
    return {"rule": rule, "numbers": verdict.numbers, "level": verdict.level, "start": start, "end": end}


RULE_CSV_COLUMNS = ["id", "kind", "scope", "feature", "model", "tier", "environment", "dimension", "params",
                    "cooldown_hours", "enabled"]
BUDGET_CSV_COLUMNS = ["rule_id", "scope", "period", "period_start", "amount_usd", "spent_usd", "forecast_usd",
                      "basis", "level", "values_at_threshold"]
BUDGET_PAGE_ROWS = 50  # each budget's numbers are read from the rollups: fewer than the other lists


def _rule_cells(rule) -> list:
    return [rule.pk, rule.kind, rule.scope_label(), rule.feature.name if rule.feature else None, rule.model,
            rule.tier, rule.environment, json.dumps(rule.dimension) if rule.dimension else None,
            json.dumps(rule.params), rule.cooldown_hours, rule.enabled]


def _budget_cells(row) -> list:
    numbers, counts = row["numbers"], row.get("per_value")
    return [row["rule"].pk, row["rule"].scope_label(), numbers.get("period"), row["start"], numbers.get("amount_usd"),
            numbers.get("spent_usd"), numbers.get("forecast_usd"), numbers.get("basis"), row.get("level"),
            json.dumps(counts) if counts else None]


@login_required
def rules_page(request, slug):
    project, is_admin = _page_project(request, slug)

    def create():
        serializer = RuleInputSerializer(data=_rule_form_data(request.POST), project=project)
        serializer.is_valid(raise_exception=True)
        rule = services.rule_create(project=project, data=serializer.validated_data, actor=request.user)
        return f"Rule created: {rule}."

    if request.method == "POST" and _form_saved(request, create):
        return redirect("budgets:rules", slug=slug)
    rules = Rule.objects.filter(project=project).select_related("feature", "project")
    budgets = rules.filter(kind="spend_budget", enabled=True)
    now = timezone.now()
    if wants_csv(request, "rules"):
        return csv_response(filename=f"{project.slug}-rules.csv", columns=RULE_CSV_COLUMNS, rows=rules,
                            values=_rule_cells)
    if wants_csv(request, "budgets"):
        return csv_response(filename=f"{project.slug}-budgets.csv", columns=BUDGET_CSV_COLUMNS, rows=budgets,
                            values=lambda rule: _budget_cells(_budget_row(rule, now)))
    budgets = page_list(request, budgets, limit=BUDGET_PAGE_ROWS, name="budgets")
    budgets.rows = [_budget_row(rule, now) for rule in budgets.rows]
    context = {
        "project": project, "nav": "rules", "is_admin": is_admin, "rules": page_list(request, rules, name="rules"),
        "budgets": budgets, "kinds": RULE_KINDS,
        "defaults": {k: json.dumps(rule_functions.defaults(k)) for k, _ in RULE_KINDS},
        "features": _feature_suggestions(project), "form": request.POST if request.method == "POST" else {},
    }
    return render(request, "budgets/rules.html", context)


FEATURE_SUGGESTIONS = 500  # a datalist of names to pick from: any other name may still be typed


def _feature_suggestions(project):
    return Feature.objects.filter(project=project).order_by("name")[:FEATURE_SUGGESTIONS]


@login_required
def rule_edit(request, slug, rule_id):
    project = project_for_user(user=request.user, slug=slug, admin=True)
    rule = get_object_or_404(Rule.objects.select_related("feature"), project=project, pk=rule_id)

    def save():
        data = _rule_form_data(request.POST)
        data.pop("kind")
        serializer = RuleInputSerializer(data=data, project=project, instance_rule=rule, partial=True)
        serializer.is_valid(raise_exception=True)
        services.rule_update(rule=rule, data=serializer.validated_data, actor=request.user)
        return f"Rule saved: {rule}."

    if request.method == "POST" and _form_saved(request, save):
        return redirect("budgets:rules", slug=slug)
    context = {"project": project, "nav": "rules", "rule": rule, "params_json": json.dumps(rule.params, indent=1),
               "features": _feature_suggestions(project)}
    return render(request, "budgets/rule_edit.html", context)


@_admin_action(Rule, "budgets:rules")
def rule_toggle(request, rule):
    services.rule_update(rule=rule, data={"enabled": not rule.enabled}, actor=request.user)
    return f"Rule {'enabled' if rule.enabled else 'disabled'}: {rule}."


@_admin_action(Rule, "budgets:rules")
def rule_delete(request, rule):
    services.rule_delete(rule=rule, actor=request.user)
    return "Rule deleted; its open alerts were closed."


@login_required
def channels_page(request, slug):
    project, is_admin = _page_project(request, slug)

    def create():
        data = {k: request.POST.get(k, "") for k in ("kind", "name", "target", "secret")}
        data["rules"] = [int(r) for r in request.POST.getlist("rules") if r.isdigit()]
        serializer = ChannelInputSerializer(data=data, project=project)
        serializer.is_valid(raise_exception=True)
        channel = services.channel_create(project=project, data=dict(serializer.validated_data), actor=request.user)
        return f"Channel {channel.name} added. Use Test to send a sample alert."

    if request.method == "POST" and _form_saved(request, create):
        return redirect("budgets:channels", slug=slug)
    channels = Channel.objects.filter(project=project).prefetch_related("rules")
    if wants_csv(request):
        return csv_response(filename=f"{project.slug}-channels.csv", columns=CHANNEL_CSV_COLUMNS, rows=channels,
                            values=_channel_cells)
    channels = page_list(request, channels, limit=CHANNEL_PAGE_ROWS)
    channels.rows = [{"channel": c, "deliveries": selectors.recent_deliveries(channel=c, limit=10),
                      "permanent_failures": Delivery.objects.filter(channel=c, permanent=True).count()}
                     for c in channels.rows]
    context = {"project": project, "nav": "channels", "is_admin": is_admin, "channels": channels,
               "rows": channels.rows, "kinds": Channel.KINDS,
               "rules": Rule.objects.filter(project=project).select_related("feature", "project"),
               "form": request.POST if request.method == "POST" else {}}
    return render(request, "budgets/channels.html", context)


CHANNEL_PAGE_ROWS = 50  # each channel shows its recent deliveries: fewer than the other lists
# The target shows as its host only, never its path (a Slack URL's path is a credential); no secret.
CHANNEL_CSV_COLUMNS = ["id", "kind", "name", "target_host", "has_secret", "enabled", "rules", "last_test_at",
                       "last_test_error"]


def _channel_cells(channel) -> list:
    return [channel.pk, channel.kind, channel.name, channel.target_display(), bool(channel.secret), channel.enabled,
            [rule.pk for rule in channel.rules.all()], channel.last_test_at, channel.last_test_error]


@_admin_action(Channel.objects.select_related("project"), "budgets:channels")
def channel_test(request, channel):
    services.channel_test_request(channel=channel)
    transaction.on_commit(lambda: tasks.send_channel_test.delay(channel.pk))
    messages.info(request, f"Test queued for {channel.name}: its outcome shows below once the worker has sent it.")
    return None


@_admin_action(Channel, "budgets:channels")
def channel_delete(request, channel):
    services.channel_delete(channel=channel, actor=request.user)
    return f"Channel {channel.name} deleted."

"""Alert lifecycle: open -> reminders per cooldown -> acknowledged -> resolved once; budgets per period."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import override_settings

from budgets.models import Alert, Channel, Delivery, Notice, Rule
from budgets.rules import params_clean
from budgets.services import alert_acknowledge, rules_evaluate
from costwatch.metrics.models import FeatureHour

from .helpers import HOUR, NOW, feature, hourly, only_rules, uncapped_day

pytestmark = pytest.mark.django_db
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def firing(firing, project):
    """The shared firing feature, with an email channel to notify."""
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    return firing


def _notices(alert):
    return list(Notice.objects.filter(alert=alert).order_by("created_at", "id").values_list("type", flat=True))


def test_one_reminder_per_cooldown_while_open(project, firing):
    rules_evaluate(project=project, now=NOW)
    alert = Alert.objects.get()
    for minutes in (1, 60, 23 * 60):
        rules_evaluate(project=project, now=NOW + minutes * MINUTE)
    assert _notices(alert) == ["opened"]
    # The data moves with the clock: keep the window firing by evaluating at the same hour a day later.
    uncapped_day(project, firing, now=NOW + 24 * HOUR)
    rules_evaluate(project=project, now=NOW + 24 * HOUR)
    rules_evaluate(project=project, now=NOW + 24 * HOUR + MINUTE)
    assert _notices(alert) == ["opened", "reminder"]
    assert Delivery.objects.filter(notice__alert=alert).count() == 2


def test_acknowledged_alerts_get_no_reminders(project, firing):
    rules_evaluate(project=project, now=NOW)
    alert = Alert.objects.get()
    assert alert_acknowledge(alert=alert, actor_label="alice", now=NOW + MINUTE)
    assert not alert_acknowledge(alert=alert, actor_label="bob", now=NOW + 2 * MINUTE)
    uncapped_day(project, firing, now=NOW + 30 * HOUR)
    rules_evaluate(project=project, now=NOW + 30 * HOUR)
    alert.refresh_from_db()
    assert alert.state == "acknowledged" and alert.acknowledged_by == "alice"
    assert _notices(alert) == ["opened"]


def test_it_resolves_once_clear_for_60_minutes_and_notifies_once(project, firing):
    rules_evaluate(project=project, now=NOW)
    alert = Alert.objects.get()
    FeatureHour.objects.filter(project=project).update(uncapped_calls=0)
    rules_evaluate(project=project, now=NOW + MINUTE)  # clear since NOW+1m
    rules_evaluate(project=project, now=NOW + 60 * MINUTE)
    alert.refresh_from_db()
    assert alert.state == "open" and alert.clear_since == NOW + MINUTE
    rules_evaluate(project=project, now=NOW + 61 * MINUTE)
    rules_evaluate(project=project, now=NOW + 62 * MINUTE)
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.resolved_at == NOW + 61 * MINUTE
    assert _notices(alert) == ["opened", "resolved"]


def test_firing_again_before_60_minutes_restarts_the_clear_clock(project, firing):
    rules_evaluate(project=project, now=NOW)
    FeatureHour.objects.filter(project=project).update(uncapped_calls=0)
    rules_evaluate(project=project, now=NOW + MINUTE)
    FeatureHour.objects.filter(project=project).update(uncapped_calls=1)
    rules_evaluate(project=project, now=NOW + 30 * MINUTE)
    FeatureHour.objects.filter(project=project).update(uncapped_calls=0)
    rules_evaluate(project=project, now=NOW + 62 * MINUTE)
    alert = Alert.objects.get()
    assert alert.state == "open" and alert.clear_since == NOW + 62 * MINUTE


@override_settings(ALERT_RESOLVE_AFTER_MINUTES=5)
def test_after_resolving_a_new_firing_opens_a_new_alert(project, firing):
    rules_evaluate(project=project, now=NOW)
    FeatureHour.objects.filter(project=project).update(uncapped_calls=0)
    rules_evaluate(project=project, now=NOW + MINUTE)
    rules_evaluate(project=project, now=NOW + 6 * MINUTE)
    FeatureHour.objects.filter(project=project).update(uncapped_calls=1)
    rules_evaluate(project=project, now=NOW + 7 * MINUTE)
    assert list(Alert.objects.order_by("id").values_list("state", flat=True)) == ["resolved", "open"]


def test_a_spend_budget_alerts_per_threshold_and_closes_silently_when_the_day_ends(project):
    feat = feature(project)
    only_rules(project)
    params = params_clean("spend_budget", {"period": "day", "amount_usd": "50.00"})[0]
    rule = Rule.objects.create(project=project, kind="spend_budget", feature=feat, params=params)
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    day_start = NOW.replace(hour=0, minute=0)
    hourly(project, feat, day_start - HOUR, cost="100")  # yesterday: not in today's budget
    hourly(project, feat, day_start + HOUR, cost="30")
    rules_evaluate(project=project, now=NOW)
    first = Alert.objects.get()
    assert first.level == 50 and first.numbers["spent_usd"] == "30.000000"
    assert first.key == f"feature=ticket-triage|{day_start.isoformat()}|50"
    hourly(project, feat, day_start + 2 * HOUR, model="gemini-2.5-pro", tier="pro", cost="21")
    rules_evaluate(project=project, now=NOW + MINUTE)
    assert sorted(Alert.objects.values_list("level", "state")) == [(50, "open"), (100, "open")]
    rules_evaluate(project=project, now=day_start + 24 * HOUR + MINUTE)
    assert set(Alert.objects.values_list("state", flat=True)) == {"resolved"}
    assert sorted(Notice.objects.filter(alert__rule=rule).values_list("type", flat=True)) == ["opened", "opened"]


def test_a_project_budget_in_the_project_timezone(project):
    project.timezone = "America/New_York"
    project.save()
    feat = feature(project)
    only_rules(project)
    params = params_clean("spend_budget", {"period": "day", "amount_usd": "10", "thresholds": [100]})[0]
    Rule.objects.create(project=project, kind="spend_budget", params=params)
    # NOW = 12:30 UTC = 07:30 in New York: the local day started at 05:00 UTC.
    hourly(project, feat, NOW.replace(hour=4, minute=0), cost="9")  # 23:00 local yesterday
    hourly(project, feat, NOW.replace(hour=5, minute=0), cost="9.99")
    rules_evaluate(project=project, now=NOW)
    assert not Alert.objects.exists()
    hourly(project, feat, NOW.replace(hour=6, minute=0), cost="0.01")
    rules_evaluate(project=project, now=NOW)
    alert = Alert.objects.get()
    assert alert.level == 100 and Decimal(alert.numbers["spent_usd"]) == Decimal("10")
    assert alert.period_start == NOW.replace(hour=5, minute=0)


def test_muting_a_feature_closes_its_alerts_without_a_message(project, firing):
    rules_evaluate(project=project, now=NOW)
    firing.muted = True
    firing.save()
    rules_evaluate(project=project, now=NOW + MINUTE)
    alert = Alert.objects.get()
    assert alert.state == "resolved" and alert.resolved_at == NOW + MINUTE
    assert _notices(alert) == ["opened"]

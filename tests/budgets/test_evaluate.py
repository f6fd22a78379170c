"""The rule cycle on FeatureHour rows: defaults, scope, windows, muted features, environments."""

import datetime as dt
from decimal import Decimal

import pytest

from budgets.models import Alert, Channel, Delivery, Notice, Rule
from budgets.rules import defaults
from budgets.services import default_rules_ensure, rules_evaluate
from costwatch.metrics.models import FeatureHour

from .helpers import (
    HOUR,
    NOW,
    feature,
    feature_hours,
    hourly,
    hours_back,
    only_rules,
    uncapped_day,
    uncapped_feature,
)

pytestmark = pytest.mark.django_db


def _fired(evaluations):
    return {(e.kind, e.scope.get("feature")) for e in evaluations if e.verdict.fired}


def test_default_rules_appear_with_the_first_feature_once(project):
    assert default_rules_ensure(project=project) == 0
    assert not Rule.objects.filter(project=project).exists()
    feature(project)
    rules_evaluate(project=project, now=NOW)
    rules_evaluate(project=project, now=NOW)
    rules = Rule.objects.filter(project=project)
    assert sorted(r.kind for r in rules) == sorted(
        ["unbounded_output", "pro_default", "share_drift", "escalation_band", "unpriced_traffic", "spend_spike"])
    assert all(r.is_default and r.environment == "production" and r.params == defaults(r.kind) for r in rules)
    Rule.objects.filter(project=project, kind="spend_spike").delete()
    rules_evaluate(project=project, now=NOW)
    assert not Rule.objects.filter(project=project, kind="spend_spike").exists()


def test_unbounded_output_opens_one_alert_with_its_numbers_and_a_delivery_per_channel(project):
    feat = feature(project)
    uncapped_day(project, feat, calls=10, uncapped=1)  # 250 calls, 25 uncapped = 10%
    only_rules(project, "unbounded_output")
    email = Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    evaluations = rules_evaluate(project=project, now=NOW)
    assert _fired(evaluations) == {("unbounded_output", "ticket-triage")}
    alert = Alert.objects.get(project=project)
    assert alert.state == "open" and alert.feature == feat and alert.key == "feature=ticket-triage"
    assert alert.numbers["calls_24h"] == 250
    assert alert.numbers["uncapped_calls_24h"] == 25
    assert alert.numbers["uncapped_share"] == 0.1
    notice = Notice.objects.get(alert=alert)
    assert notice.type == "opened"
    delivery = Delivery.objects.get(notice=notice)
    assert delivery.channel == email and delivery.status == "pending" and delivery.next_attempt_at == NOW
    rules_evaluate(project=project, now=NOW + dt.timedelta(minutes=1))
    assert Alert.objects.count() == 1 and Notice.objects.count() == 1


def test_the_last_24h_window_is_the_current_hour_and_the_24_before(project):
    feat = feature(project)
    only_rules(project, "unbounded_output")
    # 4 uncapped calls in bucket H-24 (inside) and 100 capped calls in the current hour: 4/104 < 5%.
    feature_hours(project, feat, hours_back(24, 1), calls=4, cap_known_calls=4, uncapped_calls=4)
    feature_hours(project, feat, hours_back(0, 1), calls=100, cap_known_calls=100)
    # A big uncapped bucket at H-25 belongs to the baseline, not the window.
    feature_hours(project, feat, hours_back(25, 1), calls=500, cap_known_calls=500, uncapped_calls=500)
    verdict = rules_evaluate(project=project, now=NOW)[0].verdict
    assert verdict.numbers["calls_24h"] == 104
    assert verdict.numbers["uncapped_calls_24h"] == 4
    assert not verdict.fired
    assert verdict.numbers["baseline_calls"] == 500


def test_output_growth_against_the_28_days_before_the_window(project):
    feat = feature(project)
    only_rules(project, "unbounded_output")
    feature_hours(project, feat, hours_back(25, 672), calls=1, cap_known_calls=1, output_tokens=200)
    feature_hours(project, feat, hours_back(697, 1), calls=1000, cap_known_calls=1000, output_tokens=1)  # outside
    feature_hours(project, feat, hours_back(0, 25), calls=4, cap_known_calls=4, output_tokens=4 * 300)
    verdict = rules_evaluate(project=project, now=NOW)[0].verdict
    assert verdict.numbers["baseline_calls"] == 672
    assert verdict.numbers["output_ratio"] == 1.5
    assert verdict.fired


def test_muted_features_raise_no_alerts(project):
    uncapped_feature(project, muted=True)
    assert rules_evaluate(project=project, now=NOW) == []
    assert not Alert.objects.exists()


def test_a_feature_rule_replaces_the_project_rule_for_that_feature(project):
    loud, quiet = feature(project, "loud"), feature(project, "quiet")
    uncapped_day(project, loud)
    uncapped_day(project, quiet)
    only_rules(project, "unbounded_output")
    Rule.objects.create(project=project, kind="unbounded_output", feature=quiet,
                        params={**defaults("unbounded_output"), "uncapped_share": 0.5})
    evaluations = rules_evaluate(project=project, now=NOW)
    assert _fired(evaluations) == {("unbounded_output", "loud")}
    assert [e.verdict.numbers["uncapped_share_threshold"] for e in evaluations if e.scope["feature"] == "quiet"] == [0.5]


def test_a_disabled_feature_rule_switches_the_kind_off_for_that_feature(project):
    feat = uncapped_feature(project)
    Rule.objects.create(project=project, kind="unbounded_output", feature=feat, enabled=False,
                        params=defaults("unbounded_output"))
    assert not _fired(rules_evaluate(project=project, now=NOW))


def test_rules_read_production_by_default_and_all_environments_when_null(project):
    feat = feature(project)
    uncapped_day(project, feat)
    feature_hours(project, feat, hours_back(0, 25), environment="staging", calls=10, cap_known_calls=10)
    [rule] = only_rules(project, "unbounded_output")
    verdict = rules_evaluate(project=project, now=NOW)[0].verdict
    assert verdict.numbers["calls_24h"] == 250
    rule.environment = None
    rule.save()
    verdict = rules_evaluate(project=project, now=NOW)[0].verdict
    assert verdict.numbers["calls_24h"] == 500
    assert verdict.numbers["uncapped_share"] == 0.05


def test_pro_default_uses_the_features_expected_pro_share(project):
    feat = feature(project, expected_pro_share=0.5)
    feature_hours(project, feat, hours_back(0, 25), calls=8, routed_calls=8, routed_pro_calls=4)  # 50%
    only_rules(project, "pro_default")
    verdict = rules_evaluate(project=project, now=NOW)[0].verdict
    assert not verdict.fired and verdict.numbers["pro_share_threshold"] == 0.6
    feat.expected_pro_share = None
    feat.save()
    assert _fired(rules_evaluate(project=project, now=NOW)) == {("pro_default", "ticket-triage")}


def test_share_drift_compares_169_buckets_with_the_672_before(project):
    feat = feature(project)
    only_rules(project, "share_drift")
    # Baseline: 672 buckets x 1 routed call, 1 Pro in every 4 (25%); recent: 169 x 2, half Pro (50%).
    for i, hour in enumerate(hours_back(169, 672)):
        feature_hours(project, feat, [hour], calls=1, routed_calls=1, routed_pro_calls=1 if i % 4 == 0 else 0)
    feature_hours(project, feat, hours_back(0, 169), calls=2, routed_calls=2, routed_pro_calls=1)
    verdict = rules_evaluate(project=project, now=NOW)[0].verdict
    assert verdict.numbers["routed_calls_7d"] == 338 and verdict.numbers["routed_calls_28d_before"] == 672
    assert verdict.numbers["pro_share_28d_before"] == 0.25 and verdict.numbers["pro_share_7d"] == 0.5
    assert verdict.fired


def test_escalation_band_over_7_days(project):
    feat = feature(project)
    only_rules(project, "escalation_band")
    feature_hours(project, feat, hours_back(0, 169), calls=4, primary_calls=2, triage_calls=1,
                  escalation_calls=1)  # 50% escalation
    verdict = rules_evaluate(project=project, now=NOW)[0].verdict
    assert verdict.numbers["primary_calls_7d"] == 338 and verdict.numbers["escalation_rate"] == 0.5
    assert verdict.fired


def test_unpriced_traffic_lists_models_from_the_hourly_rollup(project):
    feat = feature(project)
    only_rules(project, "unpriced_traffic")
    hourly(project, feat, NOW.replace(minute=0) - 3 * HOUR, model="mystery-1", calls=3, unpriced_calls=3)
    hourly(project, feat, NOW.replace(minute=0) - 30 * HOUR, model="old-mystery", calls=3, unpriced_calls=3)
    [evaluation] = rules_evaluate(project=project, now=NOW)
    assert evaluation.verdict.fired and evaluation.verdict.numbers["models"] == {"mystery-1": 3}
    assert Alert.objects.get().key == "project"


def test_spend_spike_counts_days_with_calls_in_the_28_days_before(project):
    feat = feature(project)
    only_rules(project, "spend_spike")
    # 7 days of the baseline with $4 each (mean 28/28 = $1), last 24 h $10: 10x and +$9.
    for day in range(7):
        feature_hours(project, feat, hours_back(25 + day * 24, 1), calls=1, cost_usd=Decimal("4"))
    feature_hours(project, feat, hours_back(0, 1), calls=5, cost_usd=Decimal("10"))
    verdict = rules_evaluate(project=project, now=NOW)[0].verdict
    assert verdict.numbers["baseline_active_days"] == 7
    assert verdict.numbers["mean_daily_cost_28d_usd"] == "1.000000"
    assert verdict.fired
    FeatureHour.objects.filter(hour=hours_back(25, 1)[0]).delete()
    verdict = rules_evaluate(project=project, now=NOW)[0].verdict
    assert verdict.numbers["baseline_active_days"] == 6 and not verdict.fired

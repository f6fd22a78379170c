"""evaluate_rules prints verdicts with numbers; bench_rules smoke; bad input exits non-zero."""

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from budgets.models import Alert
from ingest.services import event_batch_ingest

from .helpers import feature, only_rules

pytestmark = pytest.mark.django_db


def _events(n, uncapped, feature_name="ticket-triage"):
    now = timezone.now()
    return [{"event_id": f"{feature_name}-{i}", "timestamp": (now - dt.timedelta(minutes=5 + i)).isoformat(),
             "feature": feature_name, "model": "acme-test-lite", "tier": "lite", "input_tokens": 10,
             "output_tokens": 100, "max_output_tokens": None if i < uncapped else 512, "cost_usd": "0.01"}
            for i in range(n)]


def test_evaluate_rules_refreshes_rollups_then_prints_each_verdict_with_numbers(project):
    feature(project)
    only_rules(project, "unbounded_output")
    assert event_batch_ingest(project=project, events=_events(120, 12)).accepted == 120
    assert event_batch_ingest(project=project, events=_events(120, 0, "search-rank")).accepted == 120
    out = io.StringIO()
    call_command("evaluate_rules", "--project", project.name, stdout=out)
    text = out.getvalue()
    assert f"{project.slug}: rollups refreshed" in text and "1 firing" in text
    assert "FIRE unbounded_output" in text and "feature=ticket-triage" in text
    assert '"calls_24h": 120' in text and '"uncapped_calls_24h": 12' in text
    assert "ok   unbounded_output" in text and "feature=search-rank" in text  # quiet verdicts too, not only those that fired
    assert Alert.objects.get().numbers["uncapped_share"] == 0.1
    firing_only = io.StringIO()
    call_command("evaluate_rules", "--project", project.slug, "--firing", stdout=firing_only)
    assert "feature=ticket-triage" in firing_only.getvalue() and "feature=search-rank" not in firing_only.getvalue()


def test_evaluate_rules_accepts_now_and_rejects_bad_input(project):
    out = io.StringIO()
    call_command("evaluate_rules", "--project", project.slug, "--now", "2026-11-26T12:30:00Z", stdout=out)
    assert "at 2026-11-26T12:30:00+00:00" in out.getvalue()
    with pytest.raises(CommandError, match="--now: 'yesterday' is not an ISO date or datetime"):
        call_command("evaluate_rules", "--now", "yesterday")
    with pytest.raises(CommandError, match="--project: no project with slug or name 'nope'"):
        call_command("evaluate_rules", "--project", "nope")


@pytest.mark.smoke
def test_bench_rules_smoke_prints_cycle_time_and_rss(db):
    out = io.StringIO()
    call_command("bench_rules", "--features", "40", "--days", "35", "--cycles", "2", stdout=out)
    text = out.getvalue()
    assert "seeded 40 features x 35 days = 33600 FeatureHour rows" in text
    assert "cycle 1:" in text and "205 verdicts" in text  # 40 features x 5 kinds + unpriced + 4 budgets
    assert "rule cycle: worst" in text and "process RSS after the cycles:" in text
    firing = int(text.split("cycle 2:")[1].split("verdicts, ")[1].split(" firing")[0])
    assert firing >= 2  # features 0 and 20 misbehave in the last day
    with pytest.raises(CommandError):
        call_command("bench_rules", "--features", "0")


def test_bench_rules_with_customers_alerts_each_customer_over_its_budget(db):
    out = io.StringIO()
    call_command("bench_rules", "--features", "3", "--days", "2", "--cycles", "2", "--customers", "250",
                 stdout=out)
    text = out.getvalue()
    over = len(range(0, 250, 100))  # every 100th customer spends 10x: customers 0, 100 and 200
    assert f"seeded 250 customers = {250 * timezone.now().day} DimensionDay rows, {over} over" in text
    per_value = Alert.objects.filter(project__slug="bench-rules", scope__has_key="dimension")
    assert sorted(a.scope["dimension"]["customer"] for a in per_value) == [
        "customer-000000", "customer-000100", "customer-000200"]
    assert "rule cycle: worst" in text

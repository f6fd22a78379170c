import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from costwatch.dashboard.demo import generate_rows
from costwatch.metrics.models import FeatureDay
from ingest.models import DirtyHour, Event

pytestmark = pytest.mark.django_db


def test_generator_is_reproducible_and_tells_the_three_stories():
    end = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    rows = generate_rows(events=20_000, days=90, end=end, seed=3)
    assert rows == generate_rows(events=20_000, days=90, end=end, seed=3)
    assert 18_000 <= len(rows) <= 22_000
    assert all(end - dt.timedelta(days=90) <= r["ts"] < end for r in rows)
    routed = lambda f: [r for r in rows if r["feature"] == f and r["role"] in ("primary", "escalation")]  # noqa: E731
    draft = routed("draft-reply")
    pro_default = [r for r in draft if r["route_reason"] == "default"]
    assert len(pro_default) / len(draft) > 0.6 and all(r["model"] == "gpt-4.1" for r in pro_default)
    summarize = sorted(routed("summarize-thread"), key=lambda r: r["ts"])
    third = len(summarize) // 3

    def pro(part):
        return sum(r["model"] == "gpt-4.1" for r in part) / len(part)

    assert pro(summarize[:third]) < 0.2 < 0.25 < pro(summarize[-third:])
    assert all(r["max_output_tokens"] is None for r in rows if r["feature"] == "code-review")
    ids = {r["event_id"] for r in rows}
    children = [r for r in rows if r["role"] in ("escalation", "shadow")]
    assert children and all(r["parent_event_id"] in ids for r in children)
    assert all(r["quality"] is not None for r in rows if r["role"] == "shadow")
    assert {r["role"] for r in rows} == {"primary", "triage", "escalation", "shadow"}
    assert any(r["status"] == "error" for r in rows)
    assert {r["attributes"]["customer"] for r in rows} and all("plan" in r["attributes"] for r in rows)


def test_seed_demo_stores_prices_events_and_rollups(project):
    out = StringIO()
    call_command("seed_demo", "--project", project.name, "--events", "3000", "--days", "10", stdout=out)
    events = Event.objects.filter(project=project)
    assert 2700 <= events.count() <= 3300
    assert "seeded" in out.getvalue()
    unpriced = events.filter(model="acme-intent-ft-v3")
    assert unpriced.exists() and not unpriced.exclude(cost_usd=None).exists()
    assert not events.filter(model="gpt-4.1", cost_usd=None).exists()  # demo catalogue prices added
    assert not DirtyHour.objects.filter(project=project).exists()
    assert FeatureDay.objects.filter(project=project).count() > 0
    project.refresh_from_db()
    assert project.dimensions == ["customer", "plan"]

    with pytest.raises(CommandError, match="already has events"):
        call_command("seed_demo", "--project", project.slug, "--events", "100")
    quiet = StringIO()
    call_command("seed_demo", "--project", project.slug, "--events", "100", "--if-empty", stdout=quiet)
    assert "nothing seeded" in quiet.getvalue()
    assert abs(Event.objects.filter(project=project).count() - events.count()) == 0


def test_seed_demo_rejects_bad_input(project):
    with pytest.raises(CommandError, match="--events"):
        call_command("seed_demo", "--project", project.slug, "--events", "0")
    with pytest.raises(CommandError, match="no project"):
        call_command("seed_demo", "--project", "nope")

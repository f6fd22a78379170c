import datetime as dt
import math
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from budgets.selectors import open_alerts
from budgets.services import rules_evaluate
from costwatch.devtools.demo import generate_batches
from costwatch.metrics.models import FeatureDay
from ingest.models import DirtyHour, Event

pytestmark = pytest.mark.django_db


def generated(**kwargs) -> list[dict]:
    return [row for batch in generate_batches(**kwargs) for row in batch]


def test_generator_is_reproducible_and_tells_the_three_stories():
    end = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    rows = generated(events=20_000, days=90, end=end, seed=3)
    assert rows == generated(events=20_000, days=90, end=end, seed=3)
    assert 18_000 <= len(rows) <= 22_000
    assert all(end - dt.timedelta(days=90) <= r["ts"] < end for r in rows)
    routed = lambda f: [r for r in rows if r["feature"] == f and r["role"] in ("primary", "escalation")]  # noqa: E731
    draft = routed("draft-reply")
    pro_default = [r for r in draft if r["route_reason"] == "default"]
    assert len(pro_default) / len(draft) > 0.6 and all(r["model"] == "gpt-4.1" for r in pro_default)
    summarize = routed("summarize-thread")

    def pro(first_day, last_day):  # Pro share of summarize-thread between days before the end
        part = [r for r in summarize if end - dt.timedelta(days=first_day) <= r["ts"] < end - dt.timedelta(days=last_day)]
        return sum(r["model"] == "gpt-4.1" for r in part) / len(part)

    # ~10% at the start, a slow creep, then it steepens over the last two weeks to ~30%.
    assert 0.05 < pro(90, 60) < 0.14 and pro(60, 21) < 0.16 and 0.24 < pro(4, 0) < 0.36
    assert pro(7, 0) - pro(35, 7) > 0.12
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
    assert not events.filter(model="gpt-4.1", cost_usd=None).exists()  # priced by the catalogue
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


def _window_counts(events, feature, start, end):
    rows = [e for e in events if e["feature__name"] == feature and start <= e["ts"] < end]
    routed = [e for e in rows if e["role"] in ("primary", "escalation")]
    return {"calls": len(rows), "uncapped": sum(e["max_output_tokens"] is None for e in rows),
            "routed": len(routed), "pro": sum(e["tier"] == "pro" for e in routed),
            "primary": sum(e["role"] == "primary" for e in rows),
            "escalation": sum(e["role"] == "escalation" for e in rows)}


def test_first_rule_cycle_after_seed_demo_opens_exactly_the_three_stories(project):
    # 20k events over 36 days has the daily density of 50k over 90 (the run command seeds 120k over 90);
    # 36 days cover the rules' longest reach (the 7 days and the 28 before them).
    call_command("seed_demo", "--project", project.slug, "--events", "20000", "--days", "36", stdout=StringIO())
    now = timezone.now()
    rules_evaluate(project=project, now=now)

    alerts = {(a.kind, a.feature.name if a.feature else None): a for a in open_alerts(project=project)}
    assert set(alerts) == {("unbounded_output", "code-review"), ("pro_default", "draft-reply"),
                           ("share_drift", "summarize-thread"), ("unpriced_traffic", None), ("spend_budget", None)}

    # The budget on each customer: halfway between the two biggest customers' production spend this month.
    month_first = now.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    by_customer = {}
    for ts, cost, attributes in Event.objects.filter(project=project, environment="production").values_list(
            "ts", "cost_usd", "attributes"):
        if ts >= month_first and cost is not None:
            by_customer[attributes["customer"]] = by_customer.get(attributes["customer"], Decimal(0)) + cost
    (top, top_cost), (_, second_cost) = sorted(by_customer.items(), key=lambda item: -item[1])[:2]
    amount = ((top_cost + second_cost) / 2).quantize(Decimal("0.000001"))
    budgets = [a for a in open_alerts(project=project) if a.kind == "spend_budget"]
    assert {Decimal(a.rule.params["amount_usd"]) for a in budgets} == {amount}
    crossed = {customer: max([t for t in (50, 80, 100) if cost * 100 >= amount * t], default=None)
               for customer, cost in by_customer.items()}
    assert {(a.scope["dimension"]["customer"], a.level) for a in budgets} == {
        (customer, level) for customer, level in crossed.items() if level}
    assert [c for c, level in crossed.items() if level == 100] == [top]  # exactly one customer is over

    # The numbers, recounted in Python from the stored production events (default rules' scope).
    events = list(Event.objects.filter(project=project, environment="production").values(
        "feature__name", "ts", "role", "tier", "model", "max_output_tokens", "cost_usd"))
    hour = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    upto = hour + dt.timedelta(hours=1)
    last_24h, last_7d, before_7d = hour - dt.timedelta(hours=24), hour - dt.timedelta(hours=168), \
        hour - dt.timedelta(hours=168 + 672)

    code = _window_counts(events, "code-review", last_24h, upto)
    numbers = alerts[("unbounded_output", "code-review")].numbers
    assert code["calls"] >= 100 and code["uncapped"] == code["calls"]
    assert (numbers["calls_24h"], numbers["uncapped_calls_24h"], numbers["uncapped_share"]) == (
        code["calls"], code["calls"], 1.0)

    draft = _window_counts(events, "draft-reply", last_24h, upto)
    numbers = alerts[("pro_default", "draft-reply")].numbers
    assert draft["routed"] >= 100 and draft["pro"] / draft["routed"] >= 0.4
    assert (numbers["routed_calls_24h"], numbers["pro_calls_24h"], numbers["pro_share"]) == (
        draft["routed"], draft["pro"], round(draft["pro"] / draft["routed"], 4))

    recent = _window_counts(events, "summarize-thread", last_7d, upto)
    before = _window_counts(events, "summarize-thread", before_7d, last_7d)
    share_7d, share_28d = recent["pro"] / recent["routed"], before["pro"] / before["routed"]
    pooled = (recent["pro"] + before["pro"]) / (recent["routed"] + before["routed"])
    z = (share_7d - share_28d) / math.sqrt(pooled * (1 - pooled) * (1 / recent["routed"] + 1 / before["routed"]))
    p_value = 0.5 * math.erfc(z / math.sqrt(2))
    numbers = alerts[("share_drift", "summarize-thread")].numbers
    assert min(recent["routed"], before["routed"]) >= 200 and share_7d - share_28d >= 0.10 and p_value < 0.01
    assert (numbers["routed_calls_7d"], numbers["routed_calls_28d_before"], numbers["pro_share_7d"],
            numbers["pro_share_28d_before"]) == (recent["routed"], before["routed"], round(share_7d, 4),
                                                 round(share_28d, 4))
    assert numbers["change_points"] == pytest.approx(share_7d - share_28d, abs=1e-4)
    assert numbers["p_value"] == pytest.approx(p_value, rel=1e-2, abs=1e-300)
    summarize_24h = _window_counts(events, "summarize-thread", last_24h, upto)
    assert summarize_24h["pro"] / summarize_24h["routed"] < 0.4  # the creep is not (yet) Pro by default

    unpriced = sum(1 for e in events if last_24h <= e["ts"] < upto and e["cost_usd"] is None)
    assert unpriced > 0 and all(e["model"] == "acme-intent-ft-v3" for e in events if e["cost_usd"] is None)
    assert alerts[("unpriced_traffic", None)].numbers == {"unpriced_calls_24h": unpriced,
                                                          "models": {"acme-intent-ft-v3": unpriced}}

    # The feature with escalation traffic sits inside escalation_band's 5-20%, so it stays quiet.
    triage = _window_counts(events, "ticket-triage", last_7d, upto)
    assert triage["primary"] >= 200 and 0.05 <= triage["escalation"] / triage["primary"] <= 0.20


def test_seed_demo_never_writes_global_prices_and_a_new_project_keeps_the_catalogues_cost(project, key_client):
    from ingest.models import Price
    from ingest.seed import prices_seed_load
    from tests.factories import make_project

    prices_seed_load()  # the shipped catalogue, which a transactional test before this one may have flushed

    global_before = set(Price.objects.filter(project__isnull=True).values_list("id", flat=True))
    call_command("seed_demo", "--project", project.name, "--events", "2000", "--days", "5", stdout=StringIO())
    assert set(Price.objects.filter(project__isnull=True).values_list("id", flat=True)) == global_before
    assert not Price.objects.filter(project=project).exists()  # the shipped catalogue covers every demo model

    # A Gemini 2.5 Pro call of 300k input and 1k output tokens, in a new project: the long-context rates.
    newcomer = make_project("Newcomer", slug="newcomer")
    client = key_client(newcomer, "ingest")
    response = client.post("/api/v1/events", {"events": [{
        "event_id": "big-1", "timestamp": timezone.now().isoformat(), "feature": "my-feature",
        "model": "gemini-2.5-pro", "input_tokens": 300_000, "output_tokens": 1_000, "max_output_tokens": 2048}]},
        format="json")
    assert response.status_code == 200, response.json()
    expected = Decimal(300_000) * Decimal("2.50") / 1_000_000 + Decimal(1_000) * Decimal("15.00") / 1_000_000
    assert expected == Decimal("0.765")
    assert Event.objects.get(project=newcomer, event_id="big-1").cost_usd == expected


def test_a_demo_model_the_catalogue_lacks_becomes_an_override_on_the_demo_project_only(project):
    from ingest.models import Price
    from ingest.seed import prices_seed_load

    prices_seed_load()  # the shipped catalogue, which a transactional test before this one may have flushed
    Price.objects.filter(project__isnull=True, model__startswith="gpt-4.1").delete()
    call_command("seed_demo", "--project", project.name, "--events", "2000", "--days", "5", stdout=StringIO())
    overrides = Price.objects.filter(project=project)
    assert {(p.model, p.input_per_mtok, p.output_per_mtok) for p in overrides} == {
        ("gpt-4.1", Decimal("2.00"), Decimal("8.00")), ("gpt-4.1-mini", Decimal("0.40"), Decimal("1.60"))}
    assert not Price.objects.filter(project__isnull=True, model__startswith="gpt-4.1").exists()
    assert not Event.objects.filter(project=project, model="gpt-4.1", cost_usd=None).exists()


def test_seed_demo_removes_the_global_rows_an_earlier_version_added(project):
    from ingest.models import Price

    old = Price.objects.create(project=None, model="gemini-2.5-pro", provider="google", tier="pro",
                               input_per_mtok=Decimal("1.25"), cached_input_per_mtok=Decimal("0.31"),
                               output_per_mtok=Decimal("10.00"), effective_from=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                               created_by="seed_demo", note="demo price")
    out = StringIO()
    call_command("seed_demo", "--project", project.name, "--events", "1000", "--days", "3", stdout=out)
    assert not Price.objects.filter(pk=old.pk).exists()
    assert "removed 1 global prices" in out.getvalue()

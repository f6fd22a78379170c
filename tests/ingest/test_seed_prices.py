"""The seeded catalogue: present after migrate, well-formed, unambiguous, reloadable."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ingest.catalogue import price_values_check
from ingest.models import Event, Price, glob_literal_length
from ingest.pricing import model_matches
from ingest.seed import SEED_PATH, prices_seed_load, seed_rows
from ingest.services import event_batch_ingest
from tests.ingest.helpers import event, mtok

pytestmark = pytest.mark.django_db


def test_the_seed_file_records_its_source_and_covers_three_providers():
    import json

    document = json.loads(SEED_PATH.read_text())
    assert datetime.fromisoformat(document["prices_checked_on"])
    source = document["source"]
    assert (source["name"], source["package"], source["version"]) == ("LiteLLM", "litellm==1.110.2", "1.110.2")
    assert source["file"] == "litellm/model_prices_and_context_window_backup.json"
    assert datetime.fromisoformat(source["taken_on"])
    rows = seed_rows()
    assert {r["provider"] for r in rows} == {"google", "anthropic", "openai"}
    for provider in ("google", "anthropic", "openai"):
        assert {r["tier"] for r in rows if r["provider"] == provider} == {"lite", "pro"}
    for row in rows:
        price_values_check(row, is_override=False)
        assert row["effective_from"] == datetime(2000, 1, 1, tzinfo=UTC)


def test_no_two_seed_globs_tie_on_a_model_id():
    rows = seed_rows()
    samples = ["gemini-2.5-flash-lite", "gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-pro-preview",
               "claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929", "claude-sonnet-4-20250514",
               "claude-opus-4-1-20250805", "gpt-5", "gpt-5-mini-2025-08-07", "gpt-5-nano", "gpt-4.1-mini",
               "gpt-4o-mini", "o3-mini", "o4-mini"]
    for sample in samples:
        for tier in ("standard", "batch"):
            matching = [r for r in rows if r["service_tier"] == tier and model_matches(r["model"], True, sample)]
            lengths = [glob_literal_length(r["model"]) for r in matching]
            assert len(lengths) == len(set(lengths)), (sample, [r["model"] for r in matching])


def test_reloading_the_seed_adds_nothing_and_seeded_models_are_priced(project):
    Price.objects.filter(project__isnull=True, created_by="seed").delete()
    assert prices_seed_load() == len(seed_rows())
    assert prices_seed_load() == 0
    event_batch_ingest(project=project, events=[
        event("mini", model="gpt-5-mini-2025-08-07", provider="openai", input_tokens=1000, output_tokens=100),
        event("sonnet", model="claude-sonnet-4-5-20250929", provider="anthropic"),
    ])
    mini = Event.objects.get(event_id="mini")
    assert (mini.tier, mini.cost_usd) == ("lite", mtok(1000, "0.25") + mtok(100, "2.00"))
    assert Event.objects.get(event_id="sonnet").tier == "pro"


def test_a_gemini_2_5_pro_call_above_200k_input_tokens_costs_the_long_context_rates(project):
    prices_seed_load()  # the shipped catalogue, which a transactional test before this one may have flushed
    event_batch_ingest(project=project, events=[
        event("long", model="gemini-2.5-pro", provider="google", input_tokens=300_000, output_tokens=1_000)])
    stored = Event.objects.get(event_id="long")
    # Google's list price above 200k input tokens: $2.50 in and $15.00 out per million, for the whole call.
    assert stored.cost_usd == Decimal(300_000) * Decimal("2.50") / 1_000_000 + Decimal(1_000) * Decimal("15.00") / 1_000_000
    assert stored.cost_usd == Decimal("0.765") and stored.tier == "pro"


@pytest.mark.parametrize(("model", "tier"), [
    ("gemini-2.5-pro", "pro"), ("gemini-2.5-flash", "lite"), ("gemini-2.5-flash-lite", "lite"),
    ("gpt-5", "pro"), ("gpt-5-mini", "lite"), ("gpt-3.5-turbo", "lite"), ("claude-haiku-4-5", "lite"),
    ("claude-sonnet-4-5", "pro"), ("o4-mini", "lite"),
])
def test_seeded_tiers_follow_the_family(model, tier):
    [row] = [r for r in seed_rows() if r["model"] == model and r["service_tier"] == "standard"]
    assert row["tier"] == tier

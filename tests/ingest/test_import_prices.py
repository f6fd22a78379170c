"""manage.py import_prices: LiteLLM's price file -> added / changed / skipped rows."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from costwatch.projects.models import AuditLog
from ingest.models import Event, Price
from ingest.services import event_batch_ingest
from tests.ingest.helpers import event, mtok

pytestmark = pytest.mark.django_db

LITELLM = {
    "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0, "mode": "chat"},
    "zz-flash-mini-9": {
        "litellm_provider": "gemini", "mode": "chat",
        "input_cost_per_token": 1e-07, "output_cost_per_token": 4e-07, "cache_read_input_token_cost": 2.5e-08,
        "input_cost_per_token_batches": 5e-08, "output_cost_per_token_batches": 2e-07,
    },
    "zz-big-pro-9": {
        "litellm_provider": "anthropic", "mode": "chat",
        "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06,
        "output_cost_per_reasoning_token": 2e-05,
        "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
        "cache_read_input_token_cost_above_200k_tokens": 6e-07,
        "input_cost_per_token_priority": 5e-06, "output_cost_per_token_priority": 2.5e-05,
    },
    "openai/zz-same-9": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-06,
                         "output_cost_per_token": 2e-06},
    "zz-embed-9": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 1e-07,
                   "output_cost_per_token": 0},
    "zz-image-9": {"litellm_provider": "openai", "mode": "image_generation", "output_cost_per_image": 0.04},
}


def run(tmp_path, document, *args):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(document))
    out = StringIO()
    call_command("import_prices", str(path), *args, stdout=out)
    return out.getvalue()


def test_it_adds_new_models_from_2000_with_all_price_kinds(tmp_path):
    output = run(tmp_path, LITELLM)
    assert "5 added, 0 changed, 2 skipped" in output
    assert "added    zz-flash-mini-9 [google/standard]" in output
    assert "added    zz-flash-mini-9 [google/batch]" in output
    assert "added    zz-big-pro-9 [anthropic/priority]" in output
    assert "skipped  zz-embed-9: mode 'embedding' is not a chat model" in output
    assert "skipped  zz-image-9: mode 'image_generation' is not a chat model" in output
    flash = Price.objects.get(model="zz-flash-mini-9", service_tier="standard")
    assert (flash.provider, flash.tier, flash.input_per_mtok, flash.output_per_mtok, flash.cached_input_per_mtok) == (
        "google", "lite", Decimal("0.1"), Decimal("0.4"), Decimal("0.025"))
    assert flash.effective_from == datetime(2000, 1, 1, tzinfo=UTC) and flash.project_id is None
    batch = Price.objects.get(model="zz-flash-mini-9", service_tier="batch")
    assert (batch.input_per_mtok, batch.output_per_mtok) == (Decimal("0.05"), Decimal("0.2"))
    big = Price.objects.get(model="zz-big-pro-9", service_tier="standard")
    assert (big.tier, big.cache_write_input_per_mtok, big.reasoning_output_per_mtok) == (
        "pro", Decimal("3.75"), Decimal("20"))
    assert (big.long_context_threshold, big.long_context_input_per_mtok, big.long_context_output_per_mtok,
            big.long_context_cached_input_per_mtok) == (200_000, Decimal("6"), Decimal("22.5"), Decimal("0.6"))
    same = Price.objects.get(model="zz-same-9")  # the "openai/" prefix is dropped
    assert same.provider == "openai"
    assert AuditLog.objects.filter(target_type="price", actor_label="import_prices").count() == 5


def test_a_changed_price_starts_a_new_period_and_an_unchanged_one_is_skipped(tmp_path):
    run(tmp_path, LITELLM)
    Price.objects.filter(model="zz-big-pro-9", service_tier="standard").update(tier="lite")  # edited by hand
    changed = json.loads(json.dumps(LITELLM))
    changed["zz-big-pro-9"]["input_cost_per_token"] = 2.5e-06
    output = run(tmp_path, changed, "--effective-from", "2026-06-01T00:00:00Z")
    assert "0 added, 1 changed, 6 skipped" in output
    assert "changed  zz-big-pro-9 [anthropic/standard] (new period from 2026-06-01T00:00:00+00:00)" in output
    assert "skipped  zz-flash-mini-9 [google/standard]: unchanged" in output
    periods = list(Price.objects.filter(model="zz-big-pro-9", service_tier="standard").order_by("effective_from")
                   .values_list("effective_from", "input_per_mtok", "tier"))
    assert periods == [(datetime(2000, 1, 1, tzinfo=UTC), Decimal("3"), "lite"),
                       (datetime(2026, 6, 1, tzinfo=UTC), Decimal("2.5"), "lite")]


def test_importing_prices_reprices_events_of_newly_priced_models(tmp_path, project):
    event_batch_ingest(project=project, events=[event("a", model="zz-same-9", provider="openai")])
    output = run(tmp_path, LITELLM)
    assert "re-priced 1 events" in output
    assert Event.objects.get(event_id="a").cost_usd == mtok(1000, "1") + mtok(200, "2")


def test_it_exits_with_a_clear_message_on_bad_input(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_prices", str(tmp_path / "missing.json"))
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    with pytest.raises(CommandError, match="expected a JSON object"):
        call_command("import_prices", str(bad))
    with pytest.raises(CommandError, match="--effective-from: 'soon' is not an ISO date"):
        call_command("import_prices", str(bad), "--effective-from", "soon")
    with pytest.raises(CommandError, match="give the PATH"):
        call_command("import_prices")

"""Cost at ingest: which price is in force and the cost formula of docs/ingest.md#prices, exact in Decimal."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ingest.models import Event
from ingest.services import event_batch_ingest
from tests.factories import make_project
from tests.ingest.helpers import event, iso, mtok, price, recent

pytestmark = pytest.mark.django_db


def ingest_one(project, **fields):
    result = event_batch_ingest(project=project, events=[event(**fields)])
    assert result.errors == [], result.errors
    return Event.objects.get(project=project, event_id=fields.get("event_id", "e1"))


def test_it_prices_plain_input_and_output(project):
    row = price("test-lite-1", input_per_mtok="0.10", output_per_mtok="0.40")
    stored = ingest_one(project, input_tokens=1000, output_tokens=200)
    assert stored.cost_usd == mtok(1000, "0.10") + mtok(200, "0.40")
    assert (stored.tier, stored.cost_source, stored.price_id) == ("lite", "catalogue", row.id)


def test_cached_reads_and_cache_writes_use_their_own_prices(project):
    price("claude-x", input_per_mtok="3", cached_input_per_mtok="0.30", cache_write_input_per_mtok="3.75",
          output_per_mtok="15", tier="pro")
    stored = ingest_one(project, model="claude-x", input_tokens=10_000, cached_input_tokens=6_000,
                        cache_write_input_tokens=1_500, output_tokens=700)
    expected = mtok(2_500, "3") + mtok(6_000, "0.30") + mtok(1_500, "3.75") + mtok(700, "15")
    assert stored.cost_usd == expected
    assert stored.tier == "pro"


def test_missing_cached_and_cache_write_prices_fall_back_to_input(project):
    price("plain", input_per_mtok="2", output_per_mtok="8")
    stored = ingest_one(project, model="plain", input_tokens=1_000, cached_input_tokens=400,
                        cache_write_input_tokens=100, output_tokens=10)
    assert stored.cost_usd == mtok(1_000, "2") + mtok(10, "8")


def test_reasoning_tokens_use_the_reasoning_price_and_fall_back_to_output(project):
    price("thinker", input_per_mtok="1.25", output_per_mtok="10", reasoning_output_per_mtok="12")
    price("thinker-2", input_per_mtok="1.25", output_per_mtok="10")
    with_price = ingest_one(project, event_id="a", model="thinker", input_tokens=100, output_tokens=900,
                            reasoning_tokens=600)
    fallback = ingest_one(project, event_id="b", model="thinker-2", input_tokens=100, output_tokens=900,
                          reasoning_tokens=600)
    assert with_price.cost_usd == mtok(100, "1.25") + mtok(300, "10") + mtok(600, "12")
    assert fallback.cost_usd == mtok(100, "1.25") + mtok(900, "10")


def test_long_context_prices_apply_to_the_whole_call_above_the_threshold(project):
    price("gem-pro", input_per_mtok="1.25", cached_input_per_mtok="0.31", output_per_mtok="10",
          long_context_threshold=200_000, long_context_input_per_mtok="2.50",
          long_context_cached_input_per_mtok="0.625", long_context_output_per_mtok="15", tier="pro")
    at_threshold = ingest_one(project, event_id="at", model="gem-pro", input_tokens=200_000,
                              cached_input_tokens=50_000, output_tokens=1_000)
    above = ingest_one(project, event_id="above", model="gem-pro", input_tokens=200_001,
                       cached_input_tokens=50_000, cache_write_input_tokens=1, output_tokens=1_000,
                       reasoning_tokens=400)
    assert at_threshold.cost_usd == mtok(150_000, "1.25") + mtok(50_000, "0.31") + mtok(1_000, "10")
    # Above: long-context input for uncached and (missing LC cache-write) writes, LC output for reasoning too.
    assert above.cost_usd == (mtok(150_000, "2.50") + mtok(50_000, "0.625") + mtok(1, "2.50")
                              + mtok(600, "15") + mtok(400, "15"))


def test_a_service_tier_row_prices_its_tier_and_others_fall_back_to_standard(project):
    price("gpt-t", input_per_mtok="1.25", output_per_mtok="10")
    batch = price("gpt-t", service_tier="batch", input_per_mtok="0.625", output_per_mtok="5")
    in_batch = ingest_one(project, event_id="b", model="gpt-t", service_tier="batch")
    in_flex = ingest_one(project, event_id="f", model="gpt-t", service_tier="flex")
    assert in_batch.cost_usd == mtok(1000, "0.625") + mtok(200, "5")
    assert in_batch.price_id == batch.id
    assert in_flex.cost_usd == mtok(1000, "1.25") + mtok(200, "10")
    assert in_flex.service_tier == "flex"


def test_provider_rows_match_their_provider_and_rows_without_one_match_any(project):
    price("shared-model", provider="azure", input_per_mtok="2", output_per_mtok="2")
    generic = price("shared-model", input_per_mtok="1", output_per_mtok="1")
    on_azure = ingest_one(project, event_id="az", model="shared-model", provider="azure")
    on_openai = ingest_one(project, event_id="oa", model="shared-model", provider="openai")
    assert on_azure.cost_usd == mtok(1200, "2")
    assert on_openai.cost_usd == mtok(1200, "1")
    assert on_openai.price_id == generic.id


def test_the_price_in_force_is_the_latest_effective_from_at_or_before_the_event(project):
    change_at = recent(hours=2)
    old = price("moving", input_per_mtok="1", output_per_mtok="1")
    new = price("moving", effective_from=change_at, input_per_mtok="3", output_per_mtok="3")
    before = ingest_one(project, event_id="before", model="moving", timestamp=iso(change_at - timedelta(microseconds=1)))
    exactly = ingest_one(project, event_id="exactly", model="moving", timestamp=iso(change_at))
    assert (before.price_id, before.cost_usd) == (old.id, mtok(1200, "1"))
    assert (exactly.price_id, exactly.cost_usd) == (new.id, mtok(1200, "3"))


def test_exact_ids_beat_globs_and_the_longest_glob_wins(project):
    # Not real model ids: the seeded catalogue prices those, and an exact seed row would win.
    price("acmegem-*", input_per_mtok="9", output_per_mtok="9", tier="pro")
    price("acmegem-*-flash-lite*", input_per_mtok="0.1", output_per_mtok="0.4", tier="lite")
    price("acmegem-2.5-flash-lite", input_per_mtok="0.2", output_per_mtok="0.2", tier="lite")
    by_glob = ingest_one(project, event_id="g", model="acmegem-3.0-flash-lite-preview")
    by_exact = ingest_one(project, event_id="x", model="acmegem-2.5-flash-lite")
    by_short = ingest_one(project, event_id="s", model="acmegem-ultra")
    assert by_glob.cost_usd == mtok(1000, "0.1") + mtok(200, "0.4")
    assert by_exact.cost_usd == mtok(1200, "0.2")
    assert (by_short.cost_usd, by_short.tier) == (mtok(1200, "9"), "pro")


def test_a_project_override_beats_the_global_catalogue_only_in_its_project(project):
    other = make_project("Other Co")
    price("claude-y", input_per_mtok="3", output_per_mtok="15", tier="pro")
    override = price("claude-y", project=project, input_per_mtok="2", output_per_mtok="10", tier="pro")
    mine = ingest_one(project, model="claude-y")
    theirs = ingest_one(other, model="claude-y")
    assert (mine.cost_usd, mine.cost_source, mine.price_id) == (mtok(1000, "2") + mtok(200, "10"), "override",
                                                                 override.id)
    assert (theirs.cost_usd, theirs.cost_source) == (mtok(1000, "3") + mtok(200, "15"), "catalogue")


def test_the_events_tier_then_a_tier_override_win_over_the_catalogue(project):
    price("router-model", input_per_mtok="1", output_per_mtok="1", tier="lite")
    plain = ingest_one(project, event_id="plain", model="router-model")
    own = ingest_one(project, event_id="own", model="router-model", tier="pro")
    assert (plain.tier, own.tier) == ("lite", "pro")
    # A tier-only override (no prices): the tier changes, the catalogue still prices the call.
    price("router-model", project=project, input_per_mtok=None, output_per_mtok=None, tier="pro")
    overridden = ingest_one(project, event_id="over", model="router-model")
    own_lite = ingest_one(project, event_id="own-lite", model="router-model", tier="lite")
    assert (overridden.tier, overridden.cost_usd, overridden.cost_source) == ("pro", mtok(1200, "1"), "catalogue")
    assert own_lite.tier == "lite"


def test_a_negotiated_price_override_without_a_tier_keeps_the_catalogue_tier(project):
    price("claude-z", input_per_mtok="3", output_per_mtok="15", tier="pro")
    override = price("claude-z", project=project, input_per_mtok="2", output_per_mtok="10", tier="")
    stored = ingest_one(project, model="claude-z")
    assert (stored.tier, stored.cost_usd, stored.price_id) == ("pro", mtok(1000, "2") + mtok(200, "10"), override.id)


def test_an_unknown_model_is_stored_unpriced_and_client_cost_is_used_only_without_a_price(project):
    price("known", input_per_mtok="1", output_per_mtok="1")
    unpriced = ingest_one(project, event_id="u", model="mystery-1")
    client = ingest_one(project, event_id="c", model="mystery-2", cost_usd="0.012345")
    ignored = ingest_one(project, event_id="k", model="known", cost_usd=99)
    assert (unpriced.cost_usd, unpriced.cost_source, unpriced.tier) == (None, "", "unknown")
    assert (client.cost_usd, client.cost_source, client.client_cost_usd) == (Decimal("0.012345"), "client",
                                                                             Decimal("0.012345"))
    assert (ignored.cost_usd, ignored.cost_source, ignored.client_cost_usd) == (mtok(1200, "1"), "catalogue",
                                                                                Decimal(99))


def test_pricing_columns_gives_what_pricing_rows_gives(project):
    from ingest.pricing import event_columns_price, event_rows_price
    from ingest.services import rows_to_columns

    change_at = recent(hours=3)
    price("moving", input_per_mtok="1", output_per_mtok="1")
    price("moving", effective_from=change_at, input_per_mtok="3", output_per_mtok="3", tier="pro")
    price("gemini-*-lite*", input_per_mtok="0.1", output_per_mtok="0.4", long_context_threshold=2000,
          long_context_input_per_mtok="0.2", long_context_output_per_mtok="0.8")
    price("moving", project=project, effective_from=change_at + timedelta(hours=1), input_per_mtok=None,
          output_per_mtok=None, tier="lite")  # a tier-only override in the middle of the batch
    rows = []
    for i, (model, hours) in enumerate([("moving", 4), ("moving", 3), ("moving", 2), ("moving", 1),
                                        ("gemini-9-flash-lite", 1), ("unknown-model", 1), ("unknown-model", 2)]):
        rows.append({"event_id": f"e{i}", "ts": recent(hours=hours), "feature": "f", "model": model,
                     "provider": "", "service_tier": "standard", "client_tier": "pro" if i == 3 else "",
                     "input_tokens": 1000 + 1500 * (i % 2), "cached_input_tokens": 100, "cache_write_input_tokens": 0,
                     "output_tokens": 300, "reasoning_tokens": 50 * (i % 3),
                     "client_cost_usd": Decimal("0.5") if i == 6 else None})
    columns = rows_to_columns(rows)
    event_rows_price(project=project, rows=rows)
    event_columns_price(project=project, columns=columns)
    for name in ("tier", "cost_usd", "cost_source", "price_id"):
        assert columns[name] == [row[name] for row in rows], name
    assert len({row["price_id"] for row in rows}) == 4  # old, new, glob and none: every branch was taken
    assert [row["tier"] for row in rows][:4] == ["lite", "pro", "lite", "pro"]  # old, new, override, client


def test_the_per_process_match_cache_stays_bounded_whatever_model_ids_clients_send():
    from ingest.pricing import MAX_CACHED_MODELS, PriceBook

    book = PriceBook([])
    now = datetime.now(UTC)
    for number in range(MAX_CACHED_MODELS + 5):  # e.g. a client that puts request ids in `model`
        book.match(model=f"request-{number}", provider="", service_tier="standard", ts=now)
    assert 0 < len(book._segments) <= MAX_CACHED_MODELS

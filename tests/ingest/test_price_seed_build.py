"""costwatch/devtools/price_seed.py: which rows of LiteLLM's file become the seed, and how."""

import datetime as dt
from decimal import Decimal

from costwatch.devtools.price_seed import seed_document


def _spec(provider, mode="chat", inp="1e-06", out="2e-06", **extra):
    return {"litellm_provider": provider, "mode": mode, "input_cost_per_token": Decimal(inp),
            "output_cost_per_token": Decimal(out), **extra}


def test_the_seed_keeps_chat_and_completion_models_of_three_providers_only():
    document = {
        "sample_spec": {"mode": "chat"},
        "gpt-9": _spec("openai", input_cost_per_token_batches=Decimal("5e-07")),
        "davinci-9": _spec("text-completion-openai", mode="completion"),
        "claude-x-haiku": _spec("anthropic"),
        "gemini/gemini-9-pro": _spec("gemini", input_cost_per_token_above_200k_tokens=Decimal("2e-06"),
                                     output_cost_per_token_above_200k_tokens=Decimal("4e-06")),
        "gemini-9-pro": _spec("gemini"),  # the same model without the prefix: kept once
        "ft:gpt-9": _spec("openai"),
        "text-embedding-9": _spec("openai", mode="embedding"),
        "bedrock/claude-x": _spec("bedrock"),
        "gemma-free": _spec("gemini", inp="0", out="0"),
        "gpt-9-luna": _spec("openai"),
    }
    seed = seed_document(document, version="9.9.9", taken_on=dt.date(2026, 12, 6))
    rows = {(r["model"], r["service_tier"]): r for r in seed["prices"]}
    assert set(rows) == {("gpt-9", "standard"), ("gpt-9", "batch"), ("davinci-9", "standard"),
                         ("claude-x-haiku", "standard"), ("gemini-9-pro", "standard"), ("gpt-9-luna", "standard")}
    pro = rows[("gemini-9-pro", "standard")]
    assert (pro["provider"], pro["tier"], pro["input_per_mtok"], pro["output_per_mtok"]) == ("google", "pro", "1.00",
                                                                                              "2.00")
    assert (pro["long_context_threshold"], pro["long_context_input_per_mtok"]) == (200_000, "2.00")
    assert rows[("gpt-9", "batch")]["input_per_mtok"] == "0.5"
    assert rows[("claude-x-haiku", "standard")]["tier"] == "lite"
    assert rows[("gpt-9-luna", "standard")]["tier"] == "lite"  # a hand fix: the name does not say Lite
    assert seed["source"]["package"] == "litellm==9.9.9" and seed["source"]["taken_on"] == "2026-12-06"

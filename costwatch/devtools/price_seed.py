"""Build `ingest/data/prices.json` (the seeded global catalogue) from LiteLLM's price file.

    pip download litellm==1.110.2 --no-deps -d /tmp/litellm && cd /tmp/litellm && unzip -o litellm-*.whl \\
        litellm/model_prices_and_context_window_backup.json
    python -m costwatch.devtools.price_seed /tmp/litellm/litellm/model_prices_and_context_window_backup.json \\
        --version 1.110.2 > ingest/data/prices.json

What is kept (docs/prices.md#the-seed): the chat and completion models of the providers the
Lite/Pro story is about (OpenAI, Anthropic, Google's Gemini API), read with the same rules as
`import_prices` (ingest/litellm.py). Left out: other providers and resellers (Bedrock, Azure,
Vertex, OpenRouter... the same models at their own prices; a project adds them as overrides),
fine-tunes (`ft:`, priced per organisation), and rows whose prices are all zero (free or
experimental previews: better shown as unpriced than as $0). Tiers are guessed from the name
as import_prices does, then fixed by hand for the families in TIER_FIXES.
"""

import argparse
import datetime as dt
import fnmatch
import json
import sys
from decimal import Decimal

from ingest.litellm import litellm_load, litellm_rows

SOURCE_FILE = "litellm/model_prices_and_context_window_backup.json"
PROVIDERS = {"openai", "text-completion-openai", "anthropic", "gemini"}
MODES = {"chat", "completion"}
# Families whose name does not say Lite but whose price and use do (and the reverse).
TIER_FIXES = [("gpt-3.5-turbo*", "lite"), ("*-luna", "lite"), ("*-luna-*", "lite"), ("*gemma*", "lite"),
              ("babbage-002", "lite")]
MONEY_FIELDS = ["input_per_mtok", "cached_input_per_mtok", "cache_write_input_per_mtok", "output_per_mtok",
                "reasoning_output_per_mtok", "long_context_input_per_mtok", "long_context_cached_input_per_mtok",
                "long_context_output_per_mtok"]


def kept(key: str, spec) -> bool:
    if not isinstance(spec, dict) or spec.get("litellm_provider") not in PROVIDERS:
        return False
    if spec.get("mode") not in MODES or key.startswith("ft:"):
        return False
    prices = [spec.get("input_cost_per_token"), spec.get("output_cost_per_token")]
    return any(price not in (None, 0) for price in prices)


def tier_fixed(model: str, guessed: str) -> str:
    for pattern, tier in TIER_FIXES:
        if fnmatch.fnmatchcase(model, pattern):
            return tier
    return guessed


def seed_document(document: dict, *, version: str, taken_on: dt.date) -> dict:
    """LiteLLM's document -> the seed file's document (header + one row per price)."""
    rows, _skipped = litellm_rows({key: spec for key, spec in document.items() if kept(key, spec)})
    prices, seen = [], set()
    for row in sorted(rows, key=lambda r: (r["provider"], r["model"], r["service_tier"])):
        identity = (row["model"], row["provider"], row["service_tier"])
        if identity in seen:  # "gemini/x" and "x" of the same provider: the first one (same prices)
            continue
        seen.add(identity)
        clean = {"model": row["model"], "provider": row["provider"], "service_tier": row["service_tier"],
                 "tier": tier_fixed(row["model"], row["tier"])}
        for name in MONEY_FIELDS:
            if row.get(name) is not None:
                clean[name] = _decimal_text(row[name])
        if row.get("long_context_threshold") is not None:
            clean["long_context_threshold"] = row["long_context_threshold"]
        prices.append(clean)
    return {
        "description": "costwatch's seeded global price catalogue: list prices in USD per 1M tokens, taken from "
                       "LiteLLM's price file as published in a pinned litellm release (see source). Loaded by "
                       "migration ingest 0003 (and `manage.py import_prices --seed`); every row takes effect from "
                       "2000-01-01 so past events are priced. Built by costwatch/devtools/price_seed.py.",
        "source": {"name": "LiteLLM", "package": f"litellm=={version}", "version": version, "file": SOURCE_FILE,
                   "url": f"https://pypi.org/project/litellm/{version}/", "taken_on": taken_on.isoformat()},
        "prices_checked_on": taken_on.isoformat(),
        "kept": "chat and completion models of openai, anthropic and gemini (Google's Gemini API; provider "
                "'google'); no fine-tunes (ft:), no rows whose prices are all zero; other providers are project "
                "overrides",
        "tier_fixes": {pattern: tier for pattern, tier in TIER_FIXES},
        "effective_from": "2000-01-01T00:00:00Z",
        "fallbacks": "A missing cached or cache-write price means the input price, a missing reasoning price the "
                     "output price.",
        "prices": prices,
    }


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.00"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help=f"LiteLLM's {SOURCE_FILE} from the pinned release")
    parser.add_argument("--version", required=True, help="The litellm release the file came from, e.g. 1.110.2")
    parser.add_argument("--taken-on", default=dt.date.today().isoformat(), help="Date the file was taken [today]")
    args = parser.parse_args(argv)
    document = seed_document(litellm_load(args.path), version=args.version,
                             taken_on=dt.date.fromisoformat(args.taken_on))
    json.dump(document, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reading LiteLLM's `model_prices_and_context_window.json` into price rows (docs/ingest.md#seed-catalogue-and-imports).

Per-token costs become per-1M prices (parsed as Decimal, never float):
`input_cost_per_token`, `output_cost_per_token`, `cache_read_input_token_cost`,
`cache_creation_input_token_cost`, `output_cost_per_reasoning_token`; the
`*_above_<N>k_tokens` keys give the long-context threshold (N x 1000) and prices; the
`*_batches` / `*_flex` / `*_priority` keys give service-tier rows. `litellm_provider` is
the provider (LiteLLM's Gemini/Vertex names become `google`), and a `<provider>/` prefix
of the key is dropped so ids match what the provider's API reports.
"""

import json
import re
from decimal import Decimal
from pathlib import Path

CHAT_MODES = {None, "chat", "completion", "responses"}
LITE_WORDS = ("mini", "nano", "flash", "haiku", "lite")
PROVIDER_NAMES = {"gemini": "google", "vertex_ai-language-models": "google", "vertex_ai": "google",
                  "text-completion-openai": "openai"}
SERVICE_TIER_SUFFIXES = {"batches": "batch", "flex": "flex", "priority": "priority"}
LONG_CONTEXT_RE = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")
MILLION = Decimal(1_000_000)
QUANTUM = Decimal("0.000001")


def per_mtok(value) -> Decimal | None:
    if value is None:
        return None
    return (Decimal(str(value)) * MILLION).quantize(QUANTUM)


def tier_guess(model: str) -> str:
    """Lite when a word of the id says so (gpt-5-mini, gemini-2.5-flash-lite): words, not
    substrings, or every gemini-* would be "mini"."""
    words = set(re.split(r"[-_./:@ ]", model.lower()))
    return "lite" if words & set(LITE_WORDS) else "pro"


def litellm_load(path) -> dict:
    return json.loads(Path(path).read_text(), parse_float=Decimal)


def litellm_rows(document: dict) -> tuple[list[dict], list[tuple[str, str]]]:
    """-> (price rows keyed by API field names, [(key, reason skipped)])."""
    rows, skipped = [], []
    for key, spec in document.items():
        if key == "sample_spec" or not isinstance(spec, dict):
            continue
        if spec.get("mode") not in CHAT_MODES:
            skipped.append((key, f"mode {spec.get('mode')!r} is not a chat model"))
            continue
        if spec.get("input_cost_per_token") is None or spec.get("output_cost_per_token") is None:
            skipped.append((key, "no per-token input and output prices"))
            continue
        raw_provider = spec.get("litellm_provider") or ""
        model = key.split("/", 1)[1] if "/" in key and key.split("/", 1)[0] == raw_provider else key
        base = {"model": model, "provider": PROVIDER_NAMES.get(raw_provider, raw_provider), "tier": tier_guess(model)}
        rows.append({**base, "service_tier": "standard", **_prices(spec, "")})
        for suffix, service_tier in SERVICE_TIER_SUFFIXES.items():
            if spec.get(f"input_cost_per_token_{suffix}") is not None or spec.get(
                    f"output_cost_per_token_{suffix}") is not None:
                rows.append({**base, "service_tier": service_tier, **_prices(spec, f"_{suffix}")})
    return rows, skipped


def _prices(spec, suffix) -> dict:
    def get(name, standard_fallback=False):
        value = spec.get(f"{name}{suffix}")
        if value is None and suffix and standard_fallback:  # a tier row naming only one of its prices
            value = spec.get(name)
        return per_mtok(value)

    values = {
        "input_per_mtok": get("input_cost_per_token", standard_fallback=True),
        "output_per_mtok": get("output_cost_per_token", standard_fallback=True),
        "cached_input_per_mtok": get("cache_read_input_token_cost"),
        "cache_write_input_per_mtok": get("cache_creation_input_token_cost"),
        "reasoning_output_per_mtok": get("output_cost_per_reasoning_token"),
    }
    if not suffix:
        values.update(_long_context(spec))
    return values


def _long_context(spec) -> dict:
    for name in spec:
        match = LONG_CONTEXT_RE.match(name)
        if match:
            n = match.group(1)
            return {
                "long_context_threshold": int(n) * 1000,
                "long_context_input_per_mtok": per_mtok(spec[name]),
                "long_context_cached_input_per_mtok": per_mtok(spec.get(f"cache_read_input_token_cost_above_{n}k_tokens")),
                "long_context_output_per_mtok": per_mtok(spec.get(f"output_cost_per_token_above_{n}k_tokens")),
            }
    return {}

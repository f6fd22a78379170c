"""What every SDK mapping shares: reading SDK objects or dicts, finish reasons, the event shape, estimates."""

from __future__ import annotations

import json
import math

# Finish reasons normalised to the API's vocabulary; `length` means "hit the output cap".
_FINISH = {
    # OpenAI chat / responses
    "stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
    "content_filter": "content_filter",
    # Anthropic
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
    "refusal": "content_filter",
    # Google (enum names)
    "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter", "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error", "FINISH_REASON_UNSPECIFIED": None,
}
# Provider service tiers that have their own price rows (docs/ingest.md#prices); "default"/"auto" are standard.
_SERVICE_TIERS = {"flex": "flex", "priority": "priority", "batch": "batch"}


def _get(obj, name, default=None):
    """Attribute of an SDK object, or key of a dict (snake_case, then camelCase)."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        if name in obj:
            value = obj[name]
        else:
            head, *rest = name.split("_")
            value = obj.get(head + "".join(part.title() for part in rest), default)
    else:
        value = getattr(obj, name, default)
    return default if value is None else value


def _int(value) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _enum_name(value):
    """A Google enum (or its string) as its name: FinishReason.MAX_TOKENS -> 'MAX_TOKENS'."""
    if value is None:
        return None
    return getattr(value, "value", None) or getattr(value, "name", None) or str(value)


def finish_reason(raw) -> str | None:
    raw = _enum_name(raw)
    if not raw:
        return None
    if raw in _FINISH:
        return _FINISH[raw]
    return str(raw).lower()[:50]


def estimate_tokens(text: str) -> int:
    """A rough token count (~4 characters per token) for streams that carry no usage."""
    return math.ceil(len(text) / 4) if text else 0


def _event(*, model, provider, input_tokens, output_tokens, cached=0, cache_write=0, reasoning=0,
           cap=None, finish=None, service_tier=None, fields=None) -> dict:
    # Keep the token invariants the API enforces (cached + cache_write <= input, reasoning <= output),
    # so a provider's odd report still lands instead of being rejected.
    cached, cache_write = min(cached, input_tokens), min(cache_write, max(0, input_tokens - cached))
    event = {
        "model": str(model) if model else "unknown",
        "provider": provider,
        "input_tokens": input_tokens,
        "cached_input_tokens": cached,
        "cache_write_input_tokens": cache_write,
        "output_tokens": output_tokens,
        "reasoning_tokens": min(reasoning, output_tokens),
    }
    if cap:
        event["max_output_tokens"] = int(cap)
    if finish:
        event["finish_reason"] = finish
        if finish == "error":
            event["status"] = "error"
    tier = _SERVICE_TIERS.get(_enum_name(service_tier) or "")
    if tier:
        event["service_tier"] = tier
    return _merge_fields(event, fields)


def _merge_fields(event: dict, fields: dict | None) -> dict:
    for key, value in (fields or {}).items():
        if value is None:
            continue
        if key == "attributes":
            event["attributes"] = {**event.get("attributes", {}), **value}
        else:
            event[key] = value
    return event


_UNSET_TYPES = ("NotGiven", "Omit")  # the SDKs' sentinels for "argument not given"


def _kw(request_kwargs, *names):
    for name in names:
        value = (request_kwargs or {}).get(name)
        if value is not None and type(value).__name__ not in _UNSET_TYPES:
            return value
    return None


def _estimate_request_input(request_kwargs) -> int:
    if not request_kwargs:
        return 0
    parts = [_kw(request_kwargs, name) for name in ("messages", "input", "contents", "system", "instructions")]
    text = json.dumps([p for p in parts if p is not None], default=str, ensure_ascii=False)
    return estimate_tokens(text) if any(p is not None for p in parts) else 0


def _mark_estimated(event: dict) -> dict:
    event["attributes"] = {**event.get("attributes", {}), "usage_estimated": True}
    return event


def _estimated(*, model, provider, request_kwargs, output_tokens, cap, finish, fields) -> dict:
    """A call whose usage never arrived: tokens counted from the text, marked as estimated."""
    event = _event(model=model, provider=provider, input_tokens=_estimate_request_input(request_kwargs),
                   output_tokens=output_tokens, cap=cap, finish=finish, fields=fields)
    return _mark_estimated(event)

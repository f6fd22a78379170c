"""Anthropic messages and their streams."""

from __future__ import annotations

from .common import (
    _estimate_request_input,
    _event,
    _get,
    _int,
    _kw,
    _mark_estimated,
    estimate_tokens,
    finish_reason,
)


def _anthropic_event(*, model, usage, stop_reason, request_kwargs, fields) -> dict:
    cache_read = _int(_get(usage, "cache_read_input_tokens"))
    cache_creation = _int(_get(usage, "cache_creation_input_tokens"))
    output = _int(_get(usage, "output_tokens"))
    return _event(
        model=model, provider="anthropic",
        # Anthropic's input_tokens excludes cache reads and writes; the API's input is all input.
        input_tokens=_int(_get(usage, "input_tokens")) + cache_read + cache_creation,
        cached=cache_read, cache_write=cache_creation,
        output_tokens=output,
        reasoning=_int(_get(_get(usage, "output_tokens_details"), "thinking_tokens")),
        cap=_kw(request_kwargs, "max_tokens"), finish=finish_reason(stop_reason),
        service_tier=_get(usage, "service_tier"), fields=fields,
    )


def from_anthropic_message(message, *, request_kwargs=None, **fields) -> dict:
    """An event from `client.messages.create(...)` (a Message) or a stream's
    `get_final_message()`. The cap is the request's `max_tokens`."""
    return _anthropic_event(model=_get(message, "model") or _kw(request_kwargs, "model"),
                            usage=_get(message, "usage"), stop_reason=_get(message, "stop_reason"),
                            request_kwargs=request_kwargs, fields=fields)


def from_anthropic_stream(events, *, request_kwargs=None, **fields) -> dict:
    """An event from the events of `client.messages.create(stream=True)`: input and cache
    tokens from `message_start`, the final output count and stop reason from `message_delta`."""
    model, usage, stop_reason, text, saw_delta_usage = None, {}, None, [], False
    for item in events:
        kind = _get(item, "type", "")
        if kind == "message_start":
            message = _get(item, "message")
            model = _get(message, "model") or model
            usage.update(_usage_dict(_get(message, "usage")))
        elif kind == "message_delta":
            stop_reason = _get(_get(item, "delta"), "stop_reason") or stop_reason
            delta_usage = _usage_dict(_get(item, "usage"))
            if "output_tokens" in delta_usage:
                saw_delta_usage = True
            usage.update(delta_usage)  # cumulative counts: the last one wins
        elif kind == "content_block_delta":
            delta = _get(item, "delta")
            text.append(_get(delta, "text", "") or _get(delta, "thinking", "") or _get(delta, "partial_json", ""))
    model = model or _kw(request_kwargs, "model")
    if not saw_delta_usage:
        # Cut off before message_delta: message_start's output count is only a placeholder.
        usage["output_tokens"] = max(_int(usage.get("output_tokens")), estimate_tokens("".join(text)))
        event = _anthropic_event(model=model, usage=usage, stop_reason=stop_reason,
                                 request_kwargs=request_kwargs, fields=fields)
        if not usage.get("input_tokens"):
            event["input_tokens"] = max(event["input_tokens"], _estimate_request_input(request_kwargs))
        return _mark_estimated(event)
    return _anthropic_event(model=model, usage=usage, stop_reason=stop_reason,
                            request_kwargs=request_kwargs, fields=fields)


def _usage_dict(usage) -> dict:
    names = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
             "output_tokens_details", "service_tier")
    return {name: _get(usage, name) for name in names if _get(usage, name) is not None}

"""OpenAI chat completions and the Responses API, with their streams."""

from __future__ import annotations

from .common import _estimated, _event, _get, _int, _kw, estimate_tokens, finish_reason


def _chat_finish(choices) -> str | None:
    reasons = [finish_reason(_get(choice, "finish_reason")) for choice in choices or []]
    reasons = [r for r in reasons if r]
    if "length" in reasons:  # with n > 1, one truncated answer means the cap was hit
        return "length"
    return reasons[0] if reasons else None


def from_openai_chat(response, *, request_kwargs=None, **fields) -> dict:
    """An event from `client.chat.completions.create(...)` (a ChatCompletion).

    `request_kwargs` are the arguments of the create call: the cap is
    `max_completion_tokens` or `max_tokens`, and they are used to estimate input tokens
    when the response carries no usage.
    """
    return _openai_event(
        response, request_kwargs, fields, usage_names=("prompt_tokens", "completion_tokens"),
        cap=_kw(request_kwargs, "max_completion_tokens", "max_tokens"),
        finish=_chat_finish(_get(response, "choices")), text=_chat_text,
    )


def _chat_text(response) -> str:
    return "".join(str(_get(_get(c, "message"), "content", "")) for c in _get(response, "choices", []))


def _openai_event(response, request_kwargs, fields, *, usage_names, cap, finish, text) -> dict:
    """The event of a chat completion or a Response. Both APIs name their usage counters
    `<input>`, `<input>_details`, `<output>`, `<output>_details`; only the names differ.
    Without usage, the output is estimated from `text(response)`."""
    usage = _get(response, "usage")
    model = _get(response, "model") or _kw(request_kwargs, "model")
    if usage is None:
        return _estimated(model=model, provider="openai", request_kwargs=request_kwargs,
                          output_tokens=estimate_tokens(text(response)), cap=cap, finish=finish, fields=fields)
    input_name, output_name = usage_names
    input_details = _get(usage, f"{input_name}_details")
    output_details = _get(usage, f"{output_name}_details")
    return _event(
        model=model, provider="openai",
        input_tokens=_int(_get(usage, input_name)),
        cached=_int(_get(input_details, "cached_tokens")),
        cache_write=_int(_get(input_details, "cache_write_tokens")),
        output_tokens=_int(_get(usage, output_name)),
        reasoning=_int(_get(output_details, "reasoning_tokens")),
        cap=cap, finish=finish, service_tier=_get(response, "service_tier"), fields=fields,
    )


def from_openai_chat_stream(chunks, *, request_kwargs=None, **fields) -> dict:
    """An event from the ChatCompletionChunks of a stream (usage from the final chunk, sent
    when the request had `stream_options={"include_usage": True}`)."""
    model, usage, service_tier, text, pieces = None, None, None, [], 0
    reasons = []
    for chunk in chunks:
        model = _get(chunk, "model") or model
        service_tier = _get(chunk, "service_tier") or service_tier
        usage = _get(chunk, "usage") or usage
        for choice in _get(chunk, "choices", []):
            delta = _get(choice, "delta")
            content = _get(delta, "content") or ""
            for call in _get(delta, "tool_calls", []) or []:
                content += _get(_get(call, "function"), "arguments", "") or ""
            if content:
                text.append(content)
                pieces += 1
            if _get(choice, "finish_reason"):
                reasons.append(choice)
    model = model or _kw(request_kwargs, "model")
    if usage is not None:
        final = {"model": model, "usage": usage, "choices": reasons, "service_tier": service_tier}
        return from_openai_chat(final, request_kwargs=request_kwargs, **fields)
    # Roughly one token per content chunk; the character estimate covers bigger chunks.
    output = max(pieces, estimate_tokens("".join(text)))
    return _estimated(model=model, provider="openai", request_kwargs=request_kwargs, output_tokens=output,
                      cap=_kw(request_kwargs, "max_completion_tokens", "max_tokens"),
                      finish=_chat_finish(reasons), fields=fields)


# --- OpenAI Responses API ------------------------------------------------------------------
def _response_finish(response) -> str | None:
    status = _get(response, "status")
    if status == "incomplete":
        reason = _get(_get(response, "incomplete_details"), "reason")
        return {"max_output_tokens": "length", "content_filter": "content_filter"}.get(reason, "other")
    if status in ("failed", "cancelled"):
        return "error"
    if status == "completed":
        calls = [item for item in _get(response, "output", []) or [] if "call" in str(_get(item, "type", ""))]
        return "tool_calls" if calls else "stop"
    return None


def from_openai_response(response, *, request_kwargs=None, **fields) -> dict:
    """An event from `client.responses.create(...)` (a Response). The cap is the response's
    own `max_output_tokens` (else the request's); status `incomplete` for max tokens is `length`."""
    return _openai_event(
        response, request_kwargs, fields, usage_names=("input_tokens", "output_tokens"),
        cap=_get(response, "max_output_tokens") or _kw(request_kwargs, "max_output_tokens"),
        finish=_response_finish(response), text=_response_text,
    )


def _response_text(response) -> str:
    return str((_get(response, "output_text", "") if not isinstance(response, dict) else "") or "")


def from_openai_response_stream(events, *, request_kwargs=None, **fields) -> dict:
    """An event from the stream events of `client.responses.create(stream=True)`: the final
    `response.completed` / `response.incomplete` / `response.failed` carries the usage."""
    final, model, text = None, None, []
    for item in events:
        kind = _get(item, "type", "")
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            final = _get(item, "response")
        elif kind in ("response.created", "response.in_progress"):
            model = _get(_get(item, "response"), "model") or model
        elif kind == "response.output_text.delta":
            text.append(_get(item, "delta", ""))
    if final is not None:
        return from_openai_response(final, request_kwargs=request_kwargs, **fields)
    return _estimated(model=model or _kw(request_kwargs, "model"), provider="openai",
                      request_kwargs=request_kwargs, output_tokens=estimate_tokens("".join(text)),
                      cap=_kw(request_kwargs, "max_output_tokens"), finish=None, fields=fields)

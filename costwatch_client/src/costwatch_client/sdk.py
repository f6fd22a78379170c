"""Events from the usage objects of the official SDKs (docs/sending-events.md#what-the-helpers-map).

Nothing here imports an SDK: objects are read by attribute (pydantic models of openai,
anthropic and google-genai) or by key (the same payloads as plain dicts, e.g. parsed
JSON), so the helpers work whichever SDK versions the app has, and cost nothing to import.

Token fields follow the events API: `input_tokens` is ALL input (cached reads and cache
writes included), `output_tokens` includes reasoning/thinking tokens.
"""

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


# --- OpenAI chat completions ---------------------------------------------------------------
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
    usage = _get(response, "usage")
    model = _get(response, "model") or _kw(request_kwargs, "model")
    cap = _kw(request_kwargs, "max_completion_tokens", "max_tokens")
    finish = _chat_finish(_get(response, "choices"))
    if usage is None:
        text = "".join(str(_get(_get(c, "message"), "content", "")) for c in _get(response, "choices", []))
        return _estimated(model=model, provider="openai", request_kwargs=request_kwargs,
                          output_tokens=estimate_tokens(text), cap=cap, finish=finish, fields=fields)
    prompt_details = _get(usage, "prompt_tokens_details")
    completion_details = _get(usage, "completion_tokens_details")
    return _event(
        model=model, provider="openai",
        input_tokens=_int(_get(usage, "prompt_tokens")),
        cached=_int(_get(prompt_details, "cached_tokens")),
        cache_write=_int(_get(prompt_details, "cache_write_tokens")),
        output_tokens=_int(_get(usage, "completion_tokens")),
        reasoning=_int(_get(completion_details, "reasoning_tokens")),
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
    usage = _get(response, "usage")
    model = _get(response, "model") or _kw(request_kwargs, "model")
    cap = _get(response, "max_output_tokens") or _kw(request_kwargs, "max_output_tokens")
    finish = _response_finish(response)
    if usage is None:
        text = _get(response, "output_text", "") if not isinstance(response, dict) else ""
        return _estimated(model=model, provider="openai", request_kwargs=request_kwargs,
                          output_tokens=estimate_tokens(str(text or "")), cap=cap, finish=finish, fields=fields)
    input_details = _get(usage, "input_tokens_details")
    output_details = _get(usage, "output_tokens_details")
    return _event(
        model=model, provider="openai",
        input_tokens=_int(_get(usage, "input_tokens")),
        cached=_int(_get(input_details, "cached_tokens")),
        cache_write=_int(_get(input_details, "cache_write_tokens")),
        output_tokens=_int(_get(usage, "output_tokens")),
        reasoning=_int(_get(output_details, "reasoning_tokens")),
        cap=cap, finish=finish, service_tier=_get(response, "service_tier"), fields=fields,
    )


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


# --- Anthropic -----------------------------------------------------------------------------
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


# --- Google genai --------------------------------------------------------------------------
def _google_cap(request_kwargs):
    config = _kw(request_kwargs, "config", "generation_config")
    return _get(config, "max_output_tokens") if config is not None else None


def _google_finish(candidates) -> str | None:
    for candidate in candidates or []:
        reason = finish_reason(_get(candidate, "finish_reason"))
        parts = _get(_get(candidate, "content"), "parts", []) or []
        if reason == "stop" and any(_get(part, "function_call") is not None for part in parts):
            return "tool_calls"
        if reason:
            return reason
    return None


def _google_model(response, request_kwargs):
    model = _get(response, "model_version") or _kw(request_kwargs, "model") or ""
    return str(model).removeprefix("models/")


def from_google_genai(response, *, request_kwargs=None, **fields) -> dict:
    """An event from `client.models.generate_content(...)` (a GenerateContentResponse).
    The cap is `config.max_output_tokens` of the request."""
    usage = _get(response, "usage_metadata")
    model = _google_model(response, request_kwargs)
    finish = _google_finish(_get(response, "candidates"))
    if usage is None or (_get(usage, "candidates_token_count") is None and _get(usage, "prompt_token_count") is None):
        text = _google_text([response])
        return _estimated(model=model, provider="google", request_kwargs=request_kwargs,
                          output_tokens=estimate_tokens(text), cap=_google_cap(request_kwargs),
                          finish=finish, fields=fields)
    thoughts = _int(_get(usage, "thoughts_token_count"))
    return _event(
        model=model, provider="google",
        input_tokens=_int(_get(usage, "prompt_token_count")),
        cached=_int(_get(usage, "cached_content_token_count")),
        output_tokens=_int(_get(usage, "candidates_token_count")) + thoughts,
        reasoning=thoughts,
        cap=_google_cap(request_kwargs), finish=finish, fields=fields,
    )


def _google_text(responses) -> str:
    pieces = []
    for response in responses:
        for candidate in _get(response, "candidates", []) or []:
            for part in _get(_get(candidate, "content"), "parts", []) or []:
                pieces.append(str(_get(part, "text", "") or ""))
    return "".join(pieces)


def from_google_genai_stream(chunks, *, request_kwargs=None, **fields) -> dict:
    """An event from the chunks of `generate_content_stream(...)`: the last chunk's
    usage_metadata holds the totals; the finish reason comes with the last candidate."""
    chunks = list(chunks)
    last_usage = None
    finish = None
    model_source = None
    for chunk in chunks:
        if _get(chunk, "usage_metadata") is not None:
            last_usage = _get(chunk, "usage_metadata")
        finish = _google_finish(_get(chunk, "candidates")) or finish
        model_source = chunk if _get(chunk, "model_version") else model_source
    if last_usage is None or (_get(last_usage, "candidates_token_count") is None
                              and not _get(last_usage, "thoughts_token_count")):
        event = _estimated(model=_google_model(model_source, request_kwargs), provider="google",
                           request_kwargs=request_kwargs, output_tokens=estimate_tokens(_google_text(chunks)),
                           cap=_google_cap(request_kwargs), finish=finish, fields=fields)
        if last_usage is not None and _get(last_usage, "prompt_token_count"):
            event["input_tokens"] = _int(_get(last_usage, "prompt_token_count"))
            event["cached_input_tokens"] = min(event["input_tokens"],
                                               _int(_get(last_usage, "cached_content_token_count")))
        return event
    final = {"usage_metadata": last_usage, "model_version": _get(model_source, "model_version")}
    event = from_google_genai(final, request_kwargs=request_kwargs, **fields)
    if finish and "finish_reason" not in fields:
        event["finish_reason"] = finish
        if finish == "error":
            event.setdefault("status", "error")
    return event


# --- streams without usage -----------------------------------------------------------------
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


# --- dispatch by type ----------------------------------------------------------------------
def response_kind(obj) -> str | None:
    """Which SDK object this is, by class and module name (no SDK import needed)."""
    cls = type(obj)
    module, name = cls.__module__, cls.__name__
    if module.startswith("openai"):
        return {"ChatCompletion": "openai_chat", "ParsedChatCompletion": "openai_chat",
                "Response": "openai_response", "ParsedResponse": "openai_response"}.get(name)
    if module.startswith("anthropic"):
        return "anthropic" if name in ("Message", "ParsedMessage", "BetaMessage", "ParsedBetaMessage") else None
    if module.startswith("google"):
        return "google" if name == "GenerateContentResponse" else None
    if isinstance(obj, dict):
        if obj.get("object") == "chat.completion":
            return "openai_chat"
        if obj.get("object") == "response":
            return "openai_response"
        if obj.get("type") == "message" and "stop_reason" in obj:
            return "anthropic"
        if "usage_metadata" in obj or "usageMetadata" in obj:
            return "google"
    return None


def stream_kind(obj) -> str | None:
    """'stream' for an SDK stream object (something iterable that is no response)."""
    if response_kind(obj) is not None or isinstance(obj, (dict, list, str, bytes)):
        return None
    if hasattr(obj, "__iter__") or hasattr(obj, "__aiter__"):
        return "stream"
    return None


def chunk_kind(chunk) -> str | None:
    """Which SDK's stream a chunk belongs to."""
    cls = type(chunk)
    module, name = cls.__module__, cls.__name__
    kind = _get(chunk, "type", "") if not isinstance(chunk, (str, bytes)) else ""
    if module.startswith("openai") and name == "ChatCompletionChunk" or _get(chunk, "object") == \
            "chat.completion.chunk":
        return "openai_chat"
    if isinstance(kind, str) and kind.startswith("response."):
        return "openai_response"
    if kind in ("message_start", "message_delta", "message_stop", "content_block_start", "content_block_delta",
                "content_block_stop", "ping"):
        return "anthropic"
    if module.startswith("google") or isinstance(chunk, dict) and ("usage_metadata" in chunk or "candidates" in chunk):
        return "google"
    return None


_FROM_RESPONSE = {
    "openai_chat": from_openai_chat, "openai_response": from_openai_response,
    "anthropic": from_anthropic_message, "google": from_google_genai,
}
_FROM_STREAM = {
    "openai_chat": from_openai_chat_stream, "openai_response": from_openai_response_stream,
    "anthropic": from_anthropic_stream, "google": from_google_genai_stream,
}


def event_from_response(response, *, request_kwargs=None, **fields) -> dict:
    """The event for any supported SDK response (or a list of a stream's chunks)."""
    if isinstance(response, (list, tuple)):
        kinds = [chunk_kind(chunk) for chunk in response]
        kind = next((k for k in kinds if k), None)
        if kind is None:
            raise TypeError("cannot tell which SDK these stream chunks come from")
        return _FROM_STREAM[kind](response, request_kwargs=request_kwargs, **fields)
    kind = response_kind(response)
    if kind is None:
        raise TypeError(f"unsupported response type {type(response).__module__}.{type(response).__name__}; "
                        "use costwatch_client.send() with an event dict")
    return _FROM_RESPONSE[kind](response, request_kwargs=request_kwargs, **fields)


def event_from_stream(chunks, *, request_kwargs=None, **fields) -> dict:
    return event_from_response(list(chunks), request_kwargs=request_kwargs, **fields)

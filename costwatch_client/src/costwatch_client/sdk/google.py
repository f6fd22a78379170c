"""Google Gen AI responses and their streams."""

from __future__ import annotations

from .common import _estimated, _event, _get, _int, _kw, estimate_tokens, finish_reason


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

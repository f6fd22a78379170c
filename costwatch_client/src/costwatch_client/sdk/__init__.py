"""Events from the usage objects of the official SDKs (docs/sending-events.md#what-the-helpers-map).

Nothing here imports an SDK: objects are read by attribute (pydantic models of openai,
anthropic and google-genai) or by key (the same payloads as plain dicts, e.g. parsed
JSON), so the helpers work whichever SDK versions the app has, and cost nothing to import.

Token fields follow the events API: `input_tokens` is ALL input (cached reads and cache
writes included), `output_tokens` includes reasoning/thinking tokens.
"""

from __future__ import annotations

from .anthropic import from_anthropic_message, from_anthropic_stream
from .common import _get, estimate_tokens, finish_reason
from .google import from_google_genai, from_google_genai_stream
from .openai import (
    from_openai_chat,
    from_openai_chat_stream,
    from_openai_response,
    from_openai_response_stream,
)

__all__ = [
    "chunk_kind", "estimate_tokens", "event_from_response", "event_from_stream", "finish_reason",
    "from_anthropic_message", "from_anthropic_stream", "from_google_genai", "from_google_genai_stream",
    "from_openai_chat", "from_openai_chat_stream", "from_openai_response", "from_openai_response_stream",
    "response_kind", "stream_kind",
]


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
                        "send a plain event dict with Client.send(event) instead")
    return _FROM_RESPONSE[kind](response, request_kwargs=request_kwargs, **fields)


def event_from_stream(chunks, *, request_kwargs=None, **fields) -> dict:
    return event_from_response(list(chunks), request_kwargs=request_kwargs, **fields)

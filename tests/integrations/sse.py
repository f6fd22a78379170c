"""Provider wire formats for the fake SDK servers: server-sent events and OpenAI stream chunks."""

import json


def sse(events):
    """Server-sent events: [(event_name or None, payload dict or raw str)]."""
    lines = []
    for name, payload in events:
        if name:
            lines.append(f"event: {name}")
        lines.append(f"data: {payload if isinstance(payload, str) else json.dumps(payload)}")
        lines.append("")
    return "\n".join(lines) + "\n"


def chat_chunk(content=None, finish=None, usage=None, choices=True):
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1764000000, "model": "gpt-5-mini-2025-08-07",
             "choices": [{"index": 0, "delta": {"content": content} if content else {},
                          "finish_reason": finish}] if choices else []}
    if usage:
        chunk["usage"] = usage
    return chunk

"""costwatch client: send one usage event per LLM call (no Django needed).

    from costwatch_client import Client, track

    cw = Client(api_key="cw_...", base_url="https://costwatch.example.com")
    with track(feature="ticket-triage"):
        response = cw.call(openai_client.chat.completions.create, model="gpt-4o-mini",
                           messages=messages, max_completion_tokens=512)

Standard library only; the SDK helpers read the SDKs' objects without importing them.
"""

from .client import Client  # noqa: E402
from .context import current_fields, track  # noqa: E402
from .sdk import (  # noqa: E402
    event_from_response,
    event_from_stream,
    finish_reason,
    from_anthropic_message,
    from_anthropic_stream,
    from_google_genai,
    from_google_genai_stream,
    from_openai_chat,
    from_openai_chat_stream,
    from_openai_response,
    from_openai_response_stream,
)
from .streams import RecordedStream  # noqa: E402
from .version import __version__  # noqa: E402
from .wire import retry_after_seconds  # noqa: E402

__all__ = [
    "__version__", "Client", "RecordedStream", "track", "current_fields", "retry_after_seconds",
    "event_from_response", "event_from_stream", "finish_reason",
    "from_openai_chat", "from_openai_chat_stream", "from_openai_response", "from_openai_response_stream",
    "from_anthropic_message", "from_anthropic_stream", "from_google_genai", "from_google_genai_stream",
]

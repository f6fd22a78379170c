"""OpenTelemetry glue: spans started inside `track(...)` carry its fields as `costwatch.*`
attributes, so GenAI spans exported to costwatch's `/v1/traces` get the right feature, role
and request id per call (not one feature per service).

Needs opentelemetry-sdk, which only this module imports:

    from costwatch_client.otel import TrackSpanProcessor
    provider.add_span_processor(TrackSpanProcessor())
"""

from __future__ import annotations

from opentelemetry.sdk.trace import SpanProcessor

from .context import current_fields

SPAN_FIELDS = ("feature", "role", "request_id", "route_reason", "parent_event_id", "environment", "tier",
               "service_tier", "quality", "confidence")


class TrackSpanProcessor(SpanProcessor):
    """Copies the active `track()` fields onto every span started inside the block."""

    def on_start(self, span, parent_context=None):
        fields = current_fields()
        if not fields:
            return
        for name in SPAN_FIELDS:
            value = fields.get(name)
            if isinstance(value, (str, bool, int, float)):
                span.set_attribute(f"costwatch.{name}", value)
        for key, value in (fields.get("attributes") or {}).items():
            if isinstance(value, (str, bool, int, float)):
                span.set_attribute(f"costwatch.attr.{key}", value)

    def on_end(self, span):
        pass

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

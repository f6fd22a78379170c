"""OTLP/HTTP trace ingest (docs/sending-events.md#4-opentelemetry): GenAI spans become usage events.

`POST /v1/traces` takes an `ExportTraceServiceRequest` as protobuf or OTLP JSON (optionally
gzip/deflate), authenticated by the same Bearer ingest key as the events API. Each GenAI
model-call span becomes one event dict that goes through the same `event_batch_ingest` as
`POST /api/v1/events` (with `cap_known_default=False`: a span without
`gen_ai.request.max_tokens` is "cap unknown", not "no cap"). Spans without GenAI attributes
are ignored and counted; rejected spans are reported in OTLP `partial_success`, and the
response uses the request's encoding.

One module per concern, each usable alone: `mapping` (pure: one span -> event dict),
`service` (`otlp_traces_ingest`), `wire` (bodies in and out: protobuf, OTLP JSON, the
google.rpc.Status of an error) and `views` (`OtlpTracesView`, HTTP).
"""

from .mapping import request_events, span_event
from .service import otlp_traces_ingest
from .views import OtlpTracesView

__all__ = ["OtlpTracesView", "otlp_traces_ingest", "request_events", "span_event"]

"""Real OpenTelemetry SDK spans for the OTLP tests."""

import time

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode


def recent_ns(minutes_ago=30):
    """A span start time recent enough for ingest (events may be at most 90 days old)."""
    return (time.time_ns() // 1_000_000_000 - minutes_ago * 60) * 1_000_000_000


def chat_attributes(**overrides):
    """What a GenAI instrumentation puts on a chat span (semantic conventions)."""
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-5-mini",
        "gen_ai.response.model": "gpt-5-mini-2025-08-07",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.response.finish_reasons": ["stop"],
    }
    attributes.update(overrides)
    return {k: v for k, v in attributes.items() if v is not None}


class SpanMaker:
    """Spans from a real TracerProvider, kept in memory and/or sent by extra processors."""

    def __init__(self, resource_attributes=None, processors=()):
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create(resource_attributes or {}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        for processor in processors:
            self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("costwatch-tests")

    def span(self, name="chat gpt-5-mini", attributes=None, *, start_ns, duration_ms=250, error=False):
        span = self.tracer.start_span(name, attributes=attributes or {}, start_time=start_ns)
        if error:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end(end_time=start_ns + duration_ms * 1_000_000)
        return span

    def export_request(self):
        """The ExportTraceServiceRequest the OTLP exporter would send for the spans so far."""
        return encode_spans(self.memory.get_finished_spans())

    def shutdown(self):
        self.provider.shutdown()

"""The OTLP service: the GenAI spans of an export request stored through the events API's
`event_batch_ingest`, with `cap_known_default=False` (a span without `gen_ai.request.max_tokens`
is "cap unknown", not "no cap")."""

from dataclasses import dataclass

from ..event_fields import MAX_BATCH_EVENTS
from ..services import BatchResult, event_batch_ingest
from .mapping import SpanEvents, request_events


@dataclass
class OtlpResult(BatchResult):
    """The events API's totals over the request's batches (an error's index is the event's
    position in the request, its `span` names the span), plus the spans that were no GenAI call."""

    ignored: int = 0

    def error_message(self, limit: int = 5) -> str:
        parts = [f"{e['span']}: {e['field'] or 'span'} {e['code']}: {e['message']}" for e in self.errors[:limit]]
        more = len(self.errors) - limit
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def otlp_traces_ingest(*, project, export_request, received_at=None) -> OtlpResult:
    """Store the GenAI spans of one export request as events; count the others as ignored."""
    return span_events_ingest(project=project, found=request_events(export_request), received_at=received_at)


def span_events_ingest(*, project, found: SpanEvents, received_at=None) -> OtlpResult:
    """Store already converted spans through the events API's service, in batches of 1000."""
    result = OtlpResult(ignored=found.ignored)
    for start in range(0, len(found.events), MAX_BATCH_EVENTS):
        batch = event_batch_ingest(project=project, events=found.events[start:start + MAX_BATCH_EVENTS],
                                   received_at=received_at, cap_known_default=False)
        result.accepted += batch.accepted
        result.duplicates += batch.duplicates
        result.rejected += batch.rejected
        for error in batch.errors:
            index = start + error["index"]
            result.errors.append({**error, "index": index, "span": found.labels[index]})
    return result

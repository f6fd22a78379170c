"""OpenAPI shapes and examples of the ingest endpoints (documentation only, never the hot path)."""

from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers

from costwatch.openapi import ErrorSerializer

from .event_fields import EVENT_FIELDS, MAX_BATCH_EVENTS
from .models import PRICE_TIERS, SERVICE_TIER_NAMES
from .scores import MAX_BATCH_SCORES, MAX_EVENT_ID_LENGTH, MAX_SOURCE_LENGTH

EVENTS_DESCRIPTION = """
One usage event per LLM call. JSON types are strict: token counts are JSON integers
(0 to 2^31-1), `confidence`/`quality` numbers 0-1. Each event is validated on its own: good
events are stored and bad ones reported with `index`, `event_id`, `field`, `code` and
`message` (207). A repeated `event_id` is counted in `duplicates` and never stored twice, also
under concurrent retries. Unknown top-level fields are dropped with a warning. A 2xx means the
accepted events are committed. Bodies may be gzip-compressed (`Content-Encoding: gzip`), at most
5 MB after decompression.
"""


def _event_serializer_field(field):
    """The serializer field that documents one declared event field."""
    options = {"help_text": field.help_text} if field.help_text else {}
    if not field.required:
        options["required"] = False
        if field.default not in (None, ""):  # "" and null mean "not sent"; they are not shown
            options["default"] = field.default
    if field.null_documented:
        options["allow_null"] = True
    return field.kind.serializer_field(**options)


# The OpenAPI component `EventRequest`, generated from the declaration in the declared order.
EventSerializer = type("EventSerializer", (serializers.Serializer,),
                       {field.name: _event_serializer_field(field) for field in EVENT_FIELDS})


class EventBatchSerializer(serializers.Serializer):
    events = EventSerializer(many=True, help_text=f"1 to {MAX_BATCH_EVENTS} events.")


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = ErrorSerializer(many=True)
    warnings = ErrorSerializer(many=True)


EVENTS_EXAMPLES = [
    OpenApiExample(
        "A Lite call with a cap",
        request_only=True,
        value={"events": [{
            "event_id": "3f6c1a2e-0d1b-4c55-9d2e-7b8e1c0f9a11", "timestamp": "2026-11-26T07:00:00Z",
            "feature": "ticket-triage", "model": "gemini-2.5-flash-lite", "provider": "google",
            "input_tokens": 1840, "cached_input_tokens": 1024, "output_tokens": 212, "max_output_tokens": 512,
            "finish_reason": "stop", "latency_ms": 640, "role": "primary", "request_id": "req-81",
            "attributes": {"customer": "acme-corp"},
        }]},
    ),
    OpenApiExample(
        "All stored", response_only=True, status_codes=["200"],
        value={"accepted": 1, "duplicates": 0, "rejected": 0, "errors": [], "warnings": []},
    ),
    OpenApiExample(
        "Partly rejected", response_only=True, status_codes=["207"],
        value={"accepted": 1, "duplicates": 1, "rejected": 1, "warnings": [
            {"index": 0, "event_id": "a1", "field": "feture", "code": "unknown_field",
             "message": "unknown field 'feture' was dropped"}],
            "errors": [{"index": 2, "event_id": "a3", "field": "output_tokens", "code": "min_value",
                        "message": "must be >= 0"}]},
    ),
    OpenApiExample(
        "Rate limited", response_only=True, status_codes=["429"],
        value={"errors": [{"field": None, "code": "rate_limited",
                           "message": "over this project's ingest rate limit of 20000 events/s; retry after 1 s"}]},
    ),
]


PRICE_DECIMAL = {"max_digits": 14, "decimal_places": 6, "min_value": 0, "required": False, "allow_null": True}


class PriceInputSerializer(serializers.Serializer):
    """A price as POSTed (API field names of docs/ingest.md#prices; prices per 1M tokens as decimal strings)."""

    model = serializers.CharField(min_length=1, max_length=200, help_text="Exact model id or a glob (*, ?, [...]).")
    provider = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=50)
    service_tier = serializers.ChoiceField(SERVICE_TIER_NAMES, required=False, default="standard")
    tier = serializers.ChoiceField([value for value, _label in PRICE_TIERS], required=False, allow_null=True)
    input_per_mtok = serializers.DecimalField(**PRICE_DECIMAL)
    cached_input_per_mtok = serializers.DecimalField(**PRICE_DECIMAL)
    cache_write_input_per_mtok = serializers.DecimalField(**PRICE_DECIMAL)
    output_per_mtok = serializers.DecimalField(**PRICE_DECIMAL)
    reasoning_output_per_mtok = serializers.DecimalField(**PRICE_DECIMAL)
    long_context_threshold = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    long_context_input_per_mtok = serializers.DecimalField(**PRICE_DECIMAL)
    long_context_cached_input_per_mtok = serializers.DecimalField(**PRICE_DECIMAL)
    long_context_output_per_mtok = serializers.DecimalField(**PRICE_DECIMAL)
    effective_from = serializers.DateTimeField(
        required=False, help_text="UTC; default 2000-01-01 for a model new to the catalogue (or to the project's "
                                  "overrides), so its calls already stored get their cost; else now.")


class PriceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.ChoiceField(["global", "override"])
    model = serializers.CharField()
    provider = serializers.CharField(allow_null=True)
    service_tier = serializers.CharField()
    tier = serializers.CharField(allow_null=True)
    input_per_mtok = serializers.CharField(allow_null=True)
    cached_input_per_mtok = serializers.CharField(allow_null=True)
    cache_write_input_per_mtok = serializers.CharField(allow_null=True)
    output_per_mtok = serializers.CharField(allow_null=True)
    reasoning_output_per_mtok = serializers.CharField(allow_null=True)
    long_context_threshold = serializers.IntegerField(allow_null=True)
    long_context_input_per_mtok = serializers.CharField(allow_null=True)
    long_context_cached_input_per_mtok = serializers.CharField(allow_null=True)
    long_context_output_per_mtok = serializers.CharField(allow_null=True)
    effective_from = serializers.DateTimeField()


class RecomputeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    since = serializers.DateTimeField(allow_null=True)


class PriceCreatedSerializer(serializers.Serializer):
    price = PriceSerializer()
    recompute = RecomputeSerializer(allow_null=True, help_text="The re-pricing of past events it queued, if any.")


PRICE_EXAMPLES = [
    OpenApiExample(
        "A negotiated price for a project", request_only=True,
        value={"model": "claude-sonnet-4-5*", "provider": "anthropic", "tier": "pro", "input_per_mtok": "2.40",
               "cached_input_per_mtok": "0.24", "cache_write_input_per_mtok": "3.00", "output_per_mtok": "12.00",
               "effective_from": "2026-11-01T00:00:00Z"},
    ),
]


SCORES_DESCRIPTION = """
Quality often arrives after the call (an LLM judge, a user's thumbs, an offline eval). Each item
sets the `quality` (0-1) of a stored event, and its `source` beside it; the last score of an event
wins. Every item counts as one event against the project's ingest rate limit (429 with
Retry-After over it, nothing stored). Each item is checked
on its own: good items are stored and bad ones reported with `index`, `event_id`, `field`, `code`
and `message` (207). An `event_id` not stored (yet) is rejected with code `not_found`: retry it
later. Scores feed the savings evidence at the next rollup refresh (docs/savings.md).
"""


class ScoreSerializer(serializers.Serializer):
    event_id = serializers.CharField(min_length=1, max_length=MAX_EVENT_ID_LENGTH,
                                     help_text="The scored event's event_id (as sent with the event).")
    quality = serializers.FloatField(min_value=0, max_value=1, help_text="The answer's score, 0 (bad) to 1 (good).")
    source = serializers.CharField(required=False, max_length=MAX_SOURCE_LENGTH,
                                   help_text="Who scored it, e.g. `judge`, `thumbs`, `eval`; stored with the "
                                             "quality (the last score's).")


class ScoreBatchSerializer(serializers.Serializer):
    scores = ScoreSerializer(many=True, min_length=1, max_length=MAX_BATCH_SCORES,
                             help_text=f"1 to {MAX_BATCH_SCORES} scores.")


class ScoresResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = ErrorSerializer(many=True)


SCORES_EXAMPLES = [
    OpenApiExample(
        "A judge's scores of a Lite answer and its Pro shadow", request_only=True,
        value={"scores": [{"event_id": "3f6c1a2e-0d1b-4c55-9d2e-7b8e1c0f9a11", "quality": 0.82, "source": "judge"},
                          {"event_id": "3f6c1a2e-shadow", "quality": 0.85, "source": "judge"}]},
    ),
]

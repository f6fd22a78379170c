"""The OpenAPI schema documents the ingest endpoints exactly, with examples, and without warnings."""

from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator


def ingest_schema():
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("ingest.api_urls"))])
    schema = generator.get_schema(request=None, public=True)
    return schema, dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache)


def test_the_ingest_schema_generates_without_warnings_or_errors():
    schema, warnings, errors = ingest_schema()
    assert (warnings, errors) == ({}, {})
    assert set(schema["paths"]) == {"/api/v1/events", "/api/v1/prices", "/api/v1/scores"}


def test_the_events_operation_documents_every_status_and_examples():
    schema, _, _ = ingest_schema()
    operation = schema["paths"]["/api/v1/events"]["post"]
    assert set(operation["responses"]) == {"200", "207", "400", "401", "403", "404", "413", "415", "429", "503"}
    bad_request = operation["responses"]["400"]["content"]["application/json"]["schema"]
    assert bad_request == {"anyOf": [{"$ref": "#/components/schemas/IngestResult"},
                                     {"$ref": "#/components/schemas/Errors"}]}
    request_examples = operation["requestBody"]["content"]["application/json"]["examples"]
    (example,) = request_examples.values()
    assert example["value"]["events"][0]["feature"] == "ticket-triage"
    assert "examples" in operation["responses"]["207"]["content"]["application/json"]
    event_schema = schema["components"]["schemas"]["EventRequest"]["properties"]
    assert event_schema["input_tokens"]["maximum"] == 2**31 - 1
    assert set(event_schema) >= {"event_id", "timestamp", "feature", "model", "cost_usd", "attributes", "tier"}


def test_the_prices_api_uses_the_spec_field_names():
    schema, _, _ = ingest_schema()
    fields = set(schema["components"]["schemas"]["PriceInputRequest"]["properties"])
    assert fields == {"model", "provider", "service_tier", "tier", "input_per_mtok", "cached_input_per_mtok",
                      "cache_write_input_per_mtok", "output_per_mtok", "reasoning_output_per_mtok",
                      "long_context_threshold", "long_context_input_per_mtok",
                      "long_context_cached_input_per_mtok", "long_context_output_per_mtok", "effective_from"}

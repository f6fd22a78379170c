"""The compiled fast paths (msgspec) build exactly the rows of the hand-written validator."""

import json
from datetime import UTC, datetime

from ingest.validation import (
    Context,
    batch_decode_strict,
    event_validate,
    event_validate_fast,
    rows_from_structs,
)
from tests.ingest.helpers import event

EVENTS = [
    event("plain"),
    event("full", provider="google", tier="pro", cached_input_tokens=10, cache_write_input_tokens=5,
          reasoning_tokens=7, max_output_tokens=256, service_tier="flex", finish_reason="length", latency_ms=5,
          ttft_ms=1, status="error", environment="staging", role="shadow", request_id="r", parent_event_id="p",
          route_reason="default", confidence=1, quality=0.25, cost_usd=0.1, attributes={"a": 1, "b": None}),
    event("nulls", provider=None, tier=None, max_output_tokens=None, attributes=None, cost_usd="1.5"),
]


def test_fast_paths_build_the_same_rows_as_the_full_validator():
    ctx = Context(received_at=datetime.now(UTC), max_age_days=90)
    expected = [event_validate(raw, i, ctx)[0] for i, raw in enumerate(EVENTS)]
    assert all(expected)
    by_dict = [event_validate_fast(raw, i, ctx)[0] for i, raw in enumerate(EVENTS)]
    structs = batch_decode_strict(json.dumps({"events": EVENTS}).encode())
    by_body = rows_from_structs(structs, ctx)
    assert by_dict == expected
    assert by_body == expected


def test_the_body_fast_path_declines_anything_that_needs_a_report():
    ctx = Context(received_at=datetime.now(UTC), max_age_days=90)
    assert batch_decode_strict(json.dumps({"events": [event("a", typo=1)]}).encode()) is None
    assert batch_decode_strict(json.dumps({"events": [event("a", input_tokens=True)]}).encode()) is None
    assert batch_decode_strict(json.dumps({"events": []}).encode()) is None
    late = batch_decode_strict(json.dumps({"events": [event("a", timestamp="2001-01-01T00:00:00Z")]}).encode())
    assert rows_from_structs(late, ctx) is None
    crossed = batch_decode_strict(json.dumps({"events": [event("a", output_tokens=1, reasoning_tokens=2)]}).encode())
    assert rows_from_structs(crossed, ctx) is None

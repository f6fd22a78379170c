"""The compiled fast paths (msgspec) build exactly the rows of the hand-written validator."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from ingest.decoding import batch_decode_strict, columns_from_structs, event_validate_fast
from ingest.validation import Context, event_validate
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
    assert by_dict == expected
    columns, texts = columns_from_structs(batch_decode_strict(json.dumps({"events": EVENTS}).encode()), ctx)
    assert set(columns) == set(expected[0]) - {"attributes"}
    for column, values in columns.items():
        assert values == [row[column] for row in expected], column
    assert [json.loads(text) for text in texts["attributes"]] == [row["attributes"] for row in expected]
    assert texts["ts"] == [raw["timestamp"] for raw in EVENTS]  # copied as sent


def test_a_timestamp_with_more_than_six_fractional_digits_is_rounded_and_copied_as_rounded():
    # Rounded to the microsecond as PostgreSQL rounds, and the COPY text is the rounded value,
    # so the stored time and the dirty hour worked out in Python agree (here: the next hour).
    ctx = Context(received_at=datetime.now(UTC), max_age_days=90)
    sent = datetime.now(UTC).replace(minute=59, second=59, microsecond=0) - timedelta(hours=2)
    raw = sent.strftime("%Y-%m-%dT%H:%M:%S") + ".9999999Z"
    body = json.dumps({"events": [event("a", timestamp=raw), event("b")]}).encode()
    columns, texts = columns_from_structs(batch_decode_strict(body), ctx)
    assert columns["ts"][0] == sent + timedelta(seconds=1)
    assert texts["ts"] == [columns["ts"][0].isoformat(), event("b")["timestamp"]]


@pytest.mark.parametrize("text", ["2026-11-26t07:00:00z", "2026-11-26 07:00:00+05:30", "2026-11-26T07:00:00-00:00"])
def test_every_rfc_3339_spelling_is_read_alike_by_both_paths(text):
    ctx = Context(received_at=datetime(2026, 11, 26, 12, tzinfo=UTC), max_age_days=90)
    row = event_validate(event("a", timestamp=text), 0, ctx)[0]
    columns, _texts = columns_from_structs(batch_decode_strict(json.dumps({"events": [event("a", timestamp=text)]})
                                                               .encode()), ctx)
    assert row["ts"] == columns["ts"][0] == datetime.fromisoformat(text.upper())


def test_the_body_fast_path_declines_anything_that_needs_a_report():
    ctx = Context(received_at=datetime.now(UTC), max_age_days=90)
    assert batch_decode_strict(json.dumps({"events": [event("a", typo=1)]}).encode()) is None
    assert batch_decode_strict(json.dumps({"events": [event("a", input_tokens=True)]}).encode()) is None
    assert batch_decode_strict(json.dumps({"events": []}).encode()) is None
    late = batch_decode_strict(json.dumps({"events": [event("a", timestamp="2001-01-01T00:00:00Z")]}).encode())
    assert columns_from_structs(late, ctx) is None
    for broken in [event("a", output_tokens=1, reasoning_tokens=2),
                   event("a", input_tokens=10, cached_input_tokens=6, cache_write_input_tokens=5),
                   event("a", attributes={"k": "\u00e9" * 1100}),  # 2200 bytes as JSON, 1100 characters
                   event("a", cost_usd="lots"), event("a", feature="checkout/summary"),
                   event("a", timestamp="2026-11-26T07:00:00")]:
        decoded = batch_decode_strict(json.dumps({"events": [event("ok"), broken]}).encode())
        assert decoded is not None and columns_from_structs(decoded, ctx) is None, broken

"""The examples of docs/sending-events.md stay true: the documented curl event is accepted as is."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.models import Event

DOC = Path(__file__).resolve().parents[2] / "docs" / "sending-events.md"


@pytest.mark.django_db
def test_the_documented_curl_event_is_accepted_and_stored_as_described(project, ingest_client):
    body = re.search(r"-d '(\{\"events\".*?\})'\n", DOC.read_text(), re.S).group(1)
    recent = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = re.sub(r'"timestamp": "[^"]+"', f'"timestamp": "{recent}"', body)

    response = ingest_client.post("/api/v1/events", data=body, content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "errors": [], "warnings": []}
    row = Event.objects.get(project=project)
    assert (row.feature.name, row.model, row.input_tokens, row.cached_input_tokens, row.output_tokens,
            row.reasoning_tokens, row.max_output_tokens, row.request_id) == (
        "ticket-triage", "gpt-5-mini", 1500, 1024, 420, 256, 512, "req-8812")

"""The Savings page shows at most 200 moves in each list, says how many there are, and streams
every move of the window as CSV."""

import csv
import io

import pytest

from costwatch.metrics.services import project_refresh
from tests.ingest.helpers import event, price
from tests.savings.test_recommendations import pro_calls, send

pytestmark = pytest.mark.django_db


def test_the_savings_page_caps_features_without_evidence_and_streams_every_move(client, user, project,
                                                                                ingest_client):
    price("test-lite-1", tier="lite")
    price("test-pro-1", tier="pro", input_per_mtok="2.00", output_per_mtok="8.00")
    features = [f"dark-{n:03d}" for n in range(205)]
    send(ingest_client, [e for name in features
                         for e in [*pro_calls(name, 2), event(f"{name}-lite", model="test-lite-1", feature=name)]])
    project_refresh(project=project)
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/savings/").content.decode()
    no_evidence = html.split('data-testid="no-evidence"')[1]
    assert no_evidence.split("</ul>")[0].count("<li>") == 200
    assert "Showing 200 of 205 moves without evidence, the biggest first; all 205 are in the CSV." in no_evidence
    response = client.get(f"/p/{project.slug}/savings/", {"format": "csv"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    moves = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    to_lite = [m for m in moves if m["move"] == "route_to_lite"]
    assert sorted(m["feature"] for m in to_lite) == features
    assert {(m["status"], m["pairs"]) for m in to_lite} == {("thin_evidence", "0")}

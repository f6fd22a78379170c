"""The Prices page shows at most 200 overrides and 200 catalogue prices, says how many there
are, and streams each list whole as CSV; the unpriced hint names 50 models."""

import csv
import io
from decimal import Decimal

import pytest

from ingest.models import Price, SeenModel
from tests.ingest.helpers import price

pytestmark = pytest.mark.django_db


def streamed_csv(response) -> list[dict]:
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_prices_page_caps_both_lists_and_streams_each_as_csv(client, user, project):
    Price.objects.filter(project__isnull=True).delete()  # the seeded catalogue: this test counts its own rows
    for n in range(230):
        price(f"global-{n:03d}", input_per_mtok=f"{n}.25")
    for n in range(205):
        price(f"mine-{n:03d}", project=project, input_per_mtok="1.5")
    SeenModel.objects.bulk_create([SeenModel(project=project, model=f"nobody-{n:02d}") for n in range(60)])
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/prices/").content.decode()
    assert html.count("<tr data-price-id=") == 400
    assert "global-199" in html and "global-200" not in html and "mine-199" in html and "mine-200" not in html
    assert "Showing 200 of 205 overrides, by model; all 205 are in the CSV." in html
    assert "Showing 200 of 230 catalogue prices, by model; all 230 are in the CSV." in html
    assert "nobody-49" in html and "nobody-50" not in html and "and 10 more" in html
    assert f'href="/p/{project.slug}/prices/?format=csv&amp;list=catalogue"' in html

    catalogue = streamed_csv(client.get(f"/p/{project.slug}/prices/", {"format": "csv", "list": "catalogue"}))
    assert [row["model"] for row in catalogue] == [f"global-{n:03d}" for n in range(230)]
    assert {row["scope"] for row in catalogue} == {"global"}
    assert [Decimal(row["input_per_mtok"]) for row in catalogue] == [Decimal(n) + Decimal("0.25") for n in range(230)]
    overrides = streamed_csv(client.get(f"/p/{project.slug}/prices/", {"format": "csv", "list": "overrides"}))
    assert len(overrides) == 205 and {row["scope"] for row in overrides} == {"override"}

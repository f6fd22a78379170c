from decimal import Decimal

import pytest

from tests.dashboard.pagedata import RANGE, alpha_beta_rows, row, store

pytestmark = pytest.mark.django_db


def test_it_lists_models_with_costs_and_unpriced_calls(admin_client, project):
    rows = alpha_beta_rows()
    store(project, rows)
    response = admin_client.get(f"/p/{project.slug}/models/", RANGE)
    by_model = {m["model"]: m for m in response.context["rows"]}
    for model in ("m-lite", "m-pro", "m-free"):
        mine = [r for r in rows if r["model"] == model]
        assert by_model[model]["calls"] == len(mine)
        assert by_model[model]["output_tokens"] == sum(r["output_tokens"] for r in mine)
    assert by_model["m-pro"]["cost_usd"] == Decimal("0.02") + Decimal("0.05") * 2
    assert by_model["m-free"]["cost_usd"] is None and by_model["m-free"]["unpriced_calls"] == 1
    html = response.content.decode()
    assert 'data-testid="unpriced-hint"' in html and '#add-price"><code>m-free</code></a> (1 call)' in html
    assert f'href="/p/{project.slug}/prices/?model=m-free#add-price">Add a price' in html
    assert "$0.12</td>" in html


def test_no_unpriced_hint_when_everything_is_priced(admin_client, project):
    store(project, [r for r in alpha_beta_rows() if r["cost_usd"] is not None])
    html = admin_client.get(f"/p/{project.slug}/models/", RANGE).content.decode()
    assert 'data-testid="unpriced-hint"' not in html


def test_the_page_shows_the_200_costliest_models_and_streams_all_as_csv(admin_client, project):
    import csv
    import io

    priced = [row(model=f"p-{n:03d}", cost_usd=Decimal(n + 1) / 1000) for n in range(180)]
    unpriced = [row(model=f"u-{n:03d}", tier="unknown", cost_usd=None, cost_source="none") for n in range(25)]
    store(project, priced + unpriced)
    html = admin_client.get(f"/p/{project.slug}/models/", RANGE).content.decode()
    assert html.count("<tr data-model=") == 200
    assert 'data-model="p-179"' in html and 'data-model="p-000"' in html  # every priced one, costliest first
    assert "Showing 200 of 205 models, the costliest first; all 205 are in the CSV." in html
    assert "<b>25 models without a price.</b>" in html and "and 5 more." in html
    response = admin_client.get(f"/p/{project.slug}/models/", {**RANGE, "format": "csv"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0][:2] == ["model", "tier"] and len(lines) == 1 + 205
    assert {line[0] for line in lines[1:]} == {r["model"] for r in priced + unpriced}

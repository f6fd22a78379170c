from decimal import Decimal

import pytest

from tests.dashboard.pagedata import RANGE, alpha_beta_rows, store

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

import csv
import io
from decimal import Decimal

import pytest

from tests.dashboard.pagedata import RANGE, alpha_beta_rows, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(project):
    rows = alpha_beta_rows()
    store(project, rows)
    return rows


def expected(rows, feature):
    mine = [r for r in rows if r["feature"] == feature]
    routed = [r for r in mine if r["role"] in ("primary", "escalation")]
    priced = [r for r in mine if r["cost_usd"] is not None]
    cost = sum((r["cost_usd"] for r in priced), Decimal(0))
    return {
        "calls": len(mine),
        "cost_usd": cost,
        "cost_per_call_usd": cost / len(priced),
        "pro_share": sum(r["tier"] == "pro" for r in routed) / len(routed),
        "uncapped_share": sum(r["max_output_tokens"] is None for r in mine) / len(mine),
        "cap_hit_share": sum(r["finish_reason"] == "length" for r in mine) / len(mine),
        "unpriced_calls": len(mine) - len(priced),
    }


def test_it_shows_each_features_numbers(admin_client, project, data):
    response = admin_client.get(f"/p/{project.slug}/features/", RANGE)
    assert response.status_code == 200
    rows = {r["feature"]: r for r in response.context["rows"]}
    for feature in ("alpha", "beta"):
        want = expected(data, feature)
        got = rows[feature]
        assert got["calls"] == want["calls"]
        assert got["cost_usd"] == want["cost_usd"]
        assert got["pro_share"] == pytest.approx(want["pro_share"])
        assert got["uncapped_share"] == pytest.approx(want["uncapped_share"])
        assert got["unpriced_calls"] == want["unpriced_calls"]
    html = response.content.decode()
    # alpha: $0.0231 -> "$0.02", 1 of 4 routed calls on Pro; beta: $0.10, 2 of 3 routed on Pro, 1 unpriced.
    assert "$0.0231" not in html and "$0.02</td>" in html
    assert "25.0%" in html and "$0.10</td>" in html and "66.7%" in html
    assert html.count('<svg class="spark"') == 2


def test_sparklines_have_one_point_per_day_of_the_range(admin_client, project, data):
    response = admin_client.get(f"/p/{project.slug}/features/", RANGE)
    beta = next(r for r in response.context["rows"] if r["feature"] == "beta")
    points = beta["sparkline"].split('<polyline points="')[1].split('"')[0].split()
    assert len(points) == 31  # October 2026
    heights = [float(p.split(",")[1]) for p in points]
    # beta cost $0.05 on Oct 11 and Oct 12 (the top of the line), nothing elsewhere (the baseline)
    assert heights[10] == heights[11] == min(heights)
    assert all(h == max(heights) for i, h in enumerate(heights) if i not in (10, 11))


def test_it_sorts_server_side_and_links_headers(admin_client, project, data):
    url = f"/p/{project.slug}/features/"
    by_calls = admin_client.get(url, {**RANGE, "sort": "calls"}).context["rows"]
    assert [r["feature"] for r in by_calls] == ["beta", "alpha"]  # 3 calls, then 5
    by_calls_desc = admin_client.get(url, {**RANGE, "sort": "-calls"}).context["rows"]
    assert [r["feature"] for r in by_calls_desc] == ["alpha", "beta"]
    by_cost = admin_client.get(url, {**RANGE, "sort": "-cost_usd"})
    assert [r["feature"] for r in by_cost.context["rows"]] == ["beta", "alpha"]
    html = by_cost.content.decode()
    assert 'sort=cost_usd"' in html  # clicking the active header flips it
    assert 'sort=-pro_share"' in html  # other headers sort descending first
    bogus = admin_client.get(url, {**RANGE, "sort": "drop table"})
    assert bogus.context["sort"] == "-cost_usd"


def test_csv_export_has_every_metric(admin_client, project, data):
    response = admin_client.get(f"/p/{project.slug}/features/", {**RANGE, "format": "csv", "sort": "feature"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["feature"] for r in table] == ["alpha", "beta"]
    alpha, beta = table
    assert alpha["cost_usd"] == "0.023100" and alpha["calls"] == "5" and float(alpha["pro_share"]) == 0.25
    assert beta["cost_usd"] == "0.100000" and beta["unpriced_calls"] == "1"
    assert float(beta["uncapped_share"]) == pytest.approx(2 / 3)
    assert float(beta["cap_hit_share"]) == pytest.approx(1 / 3)
    assert "latency_p95_ms" in table[0] and "ttft_p50_ms" in table[0]


def test_the_page_shows_200_features_of_more_and_streams_all_of_them_as_csv(admin_client, project):
    from tests.dashboard.pagedata import row

    store(project, [row(feature=f"f-{n:03d}", cost_usd=Decimal(n + 1) / 1000) for n in range(205)])
    response = admin_client.get(f"/p/{project.slug}/features/", RANGE)
    html = response.content.decode()
    assert html.count("<tr data-feature=") == 200
    assert 'data-feature="f-204"' in html and 'data-feature="f-005"' in html and 'data-feature="f-004"' not in html
    assert "205 features" in html and "Showing 200 of 205 features, in this order; all 205 are in the CSV." in html
    csv_link = f"/p/{project.slug}/features/?start=2026-10-01&amp;end=2026-11-01&amp;format=csv"
    assert f'href="{csv_link}" data-testid="features-csv"' in html
    response = admin_client.get(f"/p/{project.slug}/features/", {**RANGE, "format": "csv", "sort": "feature"})
    assert response.streaming
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["feature"] for r in table] == [f"f-{n:03d}" for n in range(205)]
    assert [r["cost_usd"] for r in table[:2]] == ["0.001000", "0.002000"]


def test_environment_filter_narrows_rows(admin_client, project):
    from tests.dashboard.pagedata import row

    store(project, [row(), row(environment="staging", cost_usd=Decimal("0.5"))])
    response = admin_client.get(f"/p/{project.slug}/features/", {**RANGE, "environment": "staging"})
    (alpha,) = response.context["rows"]
    assert alpha["cost_usd"] == Decimal("0.5") and alpha["calls"] == 1
    assert '<option value="staging" selected>' in response.content.decode()


def test_bad_range_is_reported_and_falls_back(admin_client, project, data):
    response = admin_client.get(f"/p/{project.slug}/features/", {"start": "2026-13-01"})
    assert response.status_code == 200
    assert response.context["param_errors"][0]["field"] == "start"
    assert "showing the default range" in response.content.decode()


def test_empty_project_tells_how_to_send_the_first_event(admin_client, project):
    html = admin_client.get(f"/p/{project.slug}/features/").content.decode()
    assert "send your first one" in html
    assert "curl -X POST http://testserver/api/v1/events" in html
    assert f'href="/p/{project.slug}/keys/"' in html

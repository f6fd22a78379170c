"""The Customers page: month to date per value of the first declared dimension, with forecast,
Pro share and budget level, and a search. Events go in through the API with a client cost on a
model no catalogue prices, so each customer's numbers are sums written down here."""

import calendar
import datetime as dt
import itertools
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from budgets.models import Rule
from costwatch.metrics.services import rollups_refresh_dirty
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db
_ids = itertools.count()

CALLS = {  # customer -> [(tier, cost)] this month, all primary calls
    "acme": [("pro", "4.00"), ("lite", "2.50")],
    "globex": [("lite", "1.25"), ("lite", "0.75"), ("pro", "1.00")],
    "initech": [("lite", "0.50")],
}


@pytest.fixture
def customers(project, key_client):
    project.dimensions = ["customer", "plan"]
    project.save()
    now = timezone.now()
    events = [{"event_id": f"cp-{next(_ids)}", "timestamp": now.isoformat(), "feature": "support-chat",
               "model": f"acme-unpriced-{tier}", "tier": tier, "input_tokens": 100, "output_tokens": 20,
               "cost_usd": cost, "attributes": {"customer": customer, "plan": "team"}}
              for customer, calls in CALLS.items() for tier, cost in calls]
    assert key_client(project, "ingest").post("/api/v1/events", {"events": events}, format="json").status_code == 200
    rollups_refresh_dirty(project=project)
    Rule.objects.create(project=project, kind="spend_budget", dimension={"customer": "*"}, params={
        "period": "month", "amount_usd": "5.00", "thresholds": [50, 80, 100], "basis": "actual"})
    return project


def _rows(html):
    body = html.split('data-testid="customers-table"')[1].split("</table>")[0]
    return re.findall(r'<tr data-value="([^"]+)">(.*?)</tr>', body, re.S)


def _cells(row_html):
    return [re.sub(r"<[^>]+>", " ", cell).split() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)]


def test_customers_by_cost_this_month_with_forecast_pro_share_and_budget_level(client, user, customers):
    client.force_login(user)
    before = timezone.now()
    html = client.get(f"/p/{customers.slug}/customers/").content.decode()
    after = timezone.now()
    assert f'href="/p/{customers.slug}/customers/" class="active"' in html  # in the navigation

    cost = {c: sum(Decimal(x) for _, x in calls) for c, calls in CALLS.items()}
    order = sorted(cost, key=lambda c: -cost[c])
    rows = _rows(html)
    assert [value for value, _ in rows] == order == ["acme", "globex", "initech"]
    month_first = before.astimezone(customers.tzinfo).date().replace(day=1)
    days = calendar.monthrange(month_first.year, month_first.month)[1]
    start = dt.datetime.combine(month_first, dt.time(), tzinfo=customers.tzinfo)
    length = Decimal(days * 86400)
    for value, row_html in rows:
        cells = _cells(row_html)
        assert cells[1] == [f"${cost[value]:,.2f}"]
        forecast = Decimal(cells[2][0].lstrip("$").replace(",", ""))
        low = cost[value] * length / Decimal((after - start).total_seconds())
        high = cost[value] * length / Decimal((before - start).total_seconds())
        assert low - Decimal("0.01") <= forecast <= high + Decimal("0.01")
        assert cells[3] == [str(len(CALLS[value]))]
        pro = sum(1 for tier, _ in CALLS[value] if tier == "pro")
        assert cells[4] == [f"{pro / len(CALLS[value]) * 100:.1f}%"]
        spent_percent = round(float(cost[value] * 100 / Decimal("5.00")), 1)
        level = max([t for t in (50, 80, 100) if cost[value] * 100 >= Decimal("5.00") * t], default=None)
        assert cells[5][0] == (f"{level}%" if level else "under")
        assert f"{spent_percent}%" in cells[5]
    assert "3 customer values with calls this month" in html


def test_the_search_keeps_matching_values(client, user, customers):
    client.force_login(user)
    html = client.get(f"/p/{customers.slug}/customers/?q=GLO").content.decode()
    assert [value for value, _ in _rows(html)] == ["globex"]
    empty = client.get(f"/p/{customers.slug}/customers/?q=nobody").content.decode()
    assert _rows(empty) == [] and "No customer value containing" in empty


def test_without_a_dimension_the_page_says_how_to_declare_one(client, user, project):
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/customers/").content.decode()
    assert 'data-testid="no-dimension"' in html and "Settings page" in html


def test_another_projects_customers_page_is_404(client, customers):
    outsider = make_user("mallory")
    make_project("Mallory Co", owner=outsider)
    client.force_login(outsider)
    assert client.get(f"/p/{customers.slug}/customers/").status_code == 404

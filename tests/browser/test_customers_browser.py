"""The Customers page of the demo in a real headless Chromium: the customer over its budget
first, with its level, and the search."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from ingest.models import Event
from tests.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_demos_customers_page_shows_the_customer_over_its_budget(live_server, page, user, project):
    call_command("seed_demo", "--project", project.slug, "--events", "4000", "--days", "20", stdout=StringIO())
    month_first = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spend = {}
    for cost, attributes in Event.objects.filter(project=project, ts__gte=month_first, environment="production",
                                                 cost_usd__isnull=False).values_list("cost_usd", "attributes"):
        spend[attributes["customer"]] = spend.get(attributes["customer"], Decimal(0)) + cost
    top = max(spend, key=spend.get)

    errors = browser_login(page, live_server.url, user)
    page.wait_for_url(f"**/p/{project.slug}/")
    page.click("nav.sidenav >> text=Customers")
    page.wait_for_url("**/customers/")
    rows = page.locator('[data-testid="customers-table"] tbody tr')
    assert rows.first.get_attribute("data-value") == top
    assert rows.first.locator('[data-testid="budget-level"] .badge').inner_text() == "100%"
    over = [row.get_attribute("data-value") for row in rows.all()
            if row.locator('[data-testid="budget-level"] .badge').inner_text() == "100%"]
    assert over == [top]

    page.fill('[data-testid="customer-search"] input[name=q]', top[:4].upper())
    page.click('[data-testid="customer-search"] button[type=submit]')
    page.wait_for_url("**q=**")
    assert top in [row.get_attribute("data-value") for row in rows.all()]
    assert all(top[:4] in row.get_attribute("data-value") for row in rows.all())
    assert errors == []

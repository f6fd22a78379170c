"""The demo's Savings page in a real headless Chromium: ranked moves with their evidence, one feature
where Lite is as good, one where it is worse, one with too few pairs, late scores included."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from costwatch.metrics.models import SavingsPair
from tests.conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_demos_savings_page_shows_ranked_moves_with_evidence(live_server, page, user, project):
    call_command("seed_demo", "--project", project.slug, "--events", "20000", "--days", "28", stdout=StringIO())
    # Pairs from the last 24 hours (not since midnight: early in a UTC day that is only minutes):
    # their shadow scores came through the scores API.
    late = SavingsPair.objects.filter(project=project, feature__name="ticket-triage",
                                      pro_ts__gte=SavingsPair.objects.latest("pro_ts").pro_ts - timedelta(days=1))
    assert late.exists()

    errors = browser_login(page, live_server.url, user)
    page.wait_for_url(f"**/p/{project.slug}/")
    page.click("nav.sidenav >> text=Savings")
    page.wait_for_url("**/savings/")
    rows = page.locator('[data-testid="savings-table"] tbody tr')
    moves = {(r.get_attribute("data-feature"), r.get_attribute("data-move")): r for r in rows.all()}
    good = moves[("ticket-triage", "route_to_lite")]
    assert good.get_attribute("data-status") == "recommended"
    assert int(good.locator("td").nth(5).inner_text()) >= 30  # pairs
    assert moves[("summarize-thread", "route_to_lite")].get_attribute("data-status") == "lite_worse"
    assert moves[("search-rank", "route_to_lite")].get_attribute("data-status") == "thin_evidence"
    dollars = [Decimal(t.strip("$").replace(",", "")) for t in
               page.locator('[data-testid="savings-table"] [data-testid="monthly"]').all_inner_texts()
               if t.startswith("$")]
    assert dollars == sorted(dollars, reverse=True) and dollars[0] > 0
    assert errors == []

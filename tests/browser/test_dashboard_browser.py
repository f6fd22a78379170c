"""The dashboard in a real headless Chromium: log in, Overview, Features (sort, date range), a
feature page; charts are drawn by plotly.js from static files and the console stays clean."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import browser_login
from tests.dashboard.pagedata import alpha_beta_rows, store
from tests.factories import make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(db):
    user = make_user("erin")
    project = make_project("Browser Demo", owner=user)
    store(project, alpha_beta_rows(ts=timezone.now() - dt.timedelta(days=3)))
    return user, project


def test_manager_browses_overview_features_and_a_feature(live_server, page, demo):
    user, project = demo
    console_errors = browser_login(page, live_server.url, user)
    page.wait_for_url(f"**/p/{project.slug}/")
    page.wait_for_selector(".js-plotly-plot .main-svg")
    assert page.locator('[data-testid="kpi-mtd"] .value').inner_text().startswith("$")

    page.click("nav.sidenav >> text=Features")
    page.wait_for_url("**/features/")
    names = page.locator("table.features tbody tr td.name a")
    assert names.all_inner_texts() == ["beta", "alpha"]  # by cost: $0.10, then $0.0231
    assert page.locator("table.features svg.spark").count() == 2

    page.click('th a[data-sort="calls"]')  # descending first: alpha has 5 calls, beta 3
    page.wait_for_url("**sort=-calls**")
    assert names.all_inner_texts() == ["alpha", "beta"]

    today = timezone.localdate().isoformat()  # today only: no calls yet
    page.fill("input[name=start]", f"{today}T00:00")  # a datetime-local picker, project timezone
    page.click(".range-picker button[type=submit]")
    page.wait_for_url(f"**start={today}T00%3A00**")
    assert "sort=-calls" in page.url  # the sort survives a range change
    assert page.locator("table.features tbody tr td.name a").all_inner_texts() == ["alpha", "beta"]  # ties: by name
    assert page.locator("table.features tbody tr").first.locator("td").nth(3).inner_text() == "0"

    page.click(".range-picker .quick >> text=Last 24 h")  # a preset: the 24 hours up to the next hour
    page.wait_for_url("**end=**")
    assert page.locator(".range-picker input[name=end]").input_value().endswith(":00")
    page.fill("input[name=start]", f"{(timezone.localdate() - dt.timedelta(days=10)).isoformat()}T00:00")
    page.click(".range-picker button[type=submit]")
    page.click("table.features >> text=alpha")
    page.wait_for_url("**/features/alpha/**")
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 5")
    assert page.locator('[data-testid="kpi-pro-share"]').inner_text() == "25.0%"
    assert page.locator('[data-testid="recent-calls"] tbody tr').count() == 5
    assert console_errors == []


def test_the_features_table_fits_a_1400px_window_up_to_its_errors_column(live_server, page, demo):
    from ingest.models import Feature

    user, project = demo
    Feature.objects.filter(project=project, name="alpha").update(name="summarize-support-thread")  # a demo-like name
    page.set_viewport_size({"width": 1400, "height": 900})
    browser_login(page, live_server.url, user)
    page.goto(f"{live_server.url}/p/{project.slug}/features/")
    errors_header = page.locator('table.features th a[data-sort="error_calls"]')
    box, frame = errors_header.bounding_box(), page.locator(".table-scroll").bounding_box()
    assert box["x"] + box["width"] <= frame["x"] + frame["width"], (box, frame)
    assert page.evaluate("(() => { const s = document.querySelector('.table-scroll'); "
                         "return s.scrollWidth <= s.clientWidth; })()")

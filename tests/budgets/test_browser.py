"""Alerts and Channels pages in a real headless Chromium: acknowledge an alert, add a channel, test it."""

import pytest
from django.utils import timezone

from budgets.models import Alert, Channel
from budgets.services import rules_evaluate
from tests.conftest import browser_login

from .helpers import feature, only_rules, uncapped_day

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_acknowledges_an_alert_then_adds_and_tests_a_webhook(live_server, page, user, project, httpserver,
                                                                       start_worker):
    httpserver.expect_request("/hook", method="POST").respond_with_data("")
    now = timezone.now()
    uncapped_day(project, feature(project), now=now)
    only_rules(project, "unbounded_output")
    rules_evaluate(project=project, now=now)
    errors = browser_login(page, live_server.url, user)
    page.click("nav.sidenav >> text=Alerts")
    page.wait_for_url("**/alerts/")
    open_table = page.locator('[data-testid="alerts-open"]')
    assert "10.0% of calls set no output cap" in open_table.inner_text()
    page.click('[data-testid="ack"]')
    page.wait_for_selector("text=Alert acknowledged")
    assert "10.0% of calls set no output cap" in page.locator('[data-testid="alerts-acknowledged"]').inner_text()
    assert Alert.objects.get().state == "acknowledged"

    page.click("nav.sidenav >> text=Channels")
    form = page.locator('[data-testid="channel-form"]')
    form.locator("select[name=kind]").select_option("webhook")
    form.locator("input[name=name]").fill("pager")
    form.locator("input[name=target]").fill(httpserver.url_for("/hook"))
    form.locator("input[name=secret]").fill("s3cret")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("text=Channel pager added")
    channel = Channel.objects.get()
    page.locator(f'[data-testid="channel-{channel.pk}"] >> text=Test').click()
    page.wait_for_selector("text=Test queued for pager")
    status = page.locator(f'[data-testid="test-status-{channel.pk}"]')
    assert "waiting for the worker" in status.inner_text() and httpserver.log == []
    start_worker()  # the send happens there; the open page picks up its outcome by itself
    page.wait_for_selector(f'[data-testid="test-status-{channel.pk}"] >> text=sent', timeout=60000)
    assert httpserver.log[0][0].get_json()["type"] == "alert.test"
    assert errors == []

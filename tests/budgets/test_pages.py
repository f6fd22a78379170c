"""Alerts, Rules & budgets and Channels pages: viewers read, admins edit, other projects 404."""

import pytest

from budgets.models import Alert, Channel, Delivery, Rule
from budgets.services import deliveries_send_due, rules_evaluate
from budgets.tasks import send_channel_test
from costwatch.projects.services import membership_set
from tests.factories import make_project, make_user

from .helpers import NOW, feature, uncapped_feature

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(project):
    viewer = make_user("victor")
    membership_set(project=project, user=viewer, role="viewer")
    return viewer


@pytest.fixture
def open_alert(project):
    uncapped_feature(project)
    rules_evaluate(project=project, now=NOW)
    return Alert.objects.get()


def test_the_alerts_page_shows_open_alerts_with_numbers_and_an_ack_button(client, user, project, open_alert):
    client.force_login(user)
    page = client.get(f"/p/{project.slug}/alerts/").content.decode()
    assert "10.0% of calls set no output cap" in page
    assert "uncapped_calls_24h</code>: 25" in page
    assert f'href="/p/{project.slug}/features/ticket-triage/"' in page
    assert 'data-testid="ack"' in page
    response = client.post(f"/p/{project.slug}/alerts/{open_alert.pk}/ack", follow=True)
    open_alert.refresh_from_db()
    assert open_alert.state == "acknowledged" and open_alert.acknowledged_by == "alice"
    assert "Alert acknowledged" in response.content.decode()


def test_viewers_read_alerts_but_cannot_ack(client, viewer, project, open_alert):
    client.force_login(viewer)
    page = client.get(f"/p/{project.slug}/alerts/").content.decode()
    assert "10.0% of calls set no output cap" in page and 'data-testid="ack"' not in page
    assert client.post(f"/p/{project.slug}/alerts/{open_alert.pk}/ack").status_code == 404
    open_alert.refresh_from_db()
    assert open_alert.state == "open"


def test_admins_create_a_budget_on_the_rules_page_and_see_actual_vs_forecast(client, user, project):
    feature(project, "search-rank")
    client.force_login(user)
    response = client.post(f"/p/{project.slug}/rules/", {
        "kind": "spend_budget", "feature": "search-rank", "environment": "production", "cooldown_hours": "24",
        "enabled": "on", "params": '{"period": "week", "amount_usd": "70.00"}'}, follow=True)
    page = response.content.decode()
    rule = Rule.objects.get(kind="spend_budget")
    assert rule.params["period"] == "week" and rule.feature.name == "search-rank"
    assert "$70.00" in page and "$0.00" in page


def test_the_rules_page_reports_bad_params_by_field(client, user, project):
    client.force_login(user)
    response = client.post(f"/p/{project.slug}/rules/", {"kind": "spend_budget", "params": '{"period": "day"}'})
    assert "params.amount_usd: spend_budget needs amount_usd" in response.content.decode()
    response = client.post(f"/p/{project.slug}/rules/", {"kind": "pro_default", "params": "{not json"})
    assert "params: not valid JSON" in response.content.decode()
    assert not Rule.objects.exists()


def test_admins_edit_disable_and_delete_rules(client, user, project):
    rule = Rule.objects.create(project=project, kind="pro_default", params={"pro_share": 0.4})
    client.force_login(user)
    client.post(f"/p/{project.slug}/rules/{rule.pk}/", {"environment": "", "cooldown_hours": "6", "enabled": "on",
                                                        "params": '{"pro_share": 0.3}'})
    rule.refresh_from_db()
    assert rule.params["pro_share"] == 0.3 and rule.cooldown_hours == 6 and rule.environment is None
    client.post(f"/p/{project.slug}/rules/{rule.pk}/toggle")
    rule.refresh_from_db()
    assert not rule.enabled
    client.post(f"/p/{project.slug}/rules/{rule.pk}/delete")
    assert not Rule.objects.exists()


def test_viewers_cannot_change_rules_or_channels(client, viewer, project):
    rule = Rule.objects.create(project=project, kind="pro_default", params={})
    client.force_login(viewer)
    page = client.get(f"/p/{project.slug}/rules/").content.decode()
    assert "Pro by default" in page and "Create rule" not in page
    assert client.post(f"/p/{project.slug}/rules/", {"kind": "pro_default"}).status_code == 404
    assert client.post(f"/p/{project.slug}/rules/{rule.pk}/toggle").status_code == 404
    assert client.post(f"/p/{project.slug}/channels/", {"kind": "email", "name": "x",
                                                         "target": "a@example.com"}).status_code == 404
    assert Rule.objects.get().enabled and not Channel.objects.exists()


def test_other_projects_pages_are_404(client, project):
    outsider = make_user("mallory")
    make_project("Other Team", owner=outsider)
    client.force_login(outsider)
    for page in ("alerts", "rules", "channels"):
        assert client.get(f"/p/{project.slug}/{page}/").status_code == 404


def test_the_test_button_queues_a_real_sample_for_the_worker_and_saves_no_alert(
        client, user, project, httpserver, django_capture_on_commit_callbacks):
    httpserver.expect_request("/hook", method="POST").respond_with_data("")
    client.force_login(user)
    client.post(f"/p/{project.slug}/channels/", {"kind": "webhook", "name": "pager",
                                                  "target": httpserver.url_for("/hook"), "secret": "k"})
    channel = Channel.objects.get()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(f"/p/{project.slug}/channels/{channel.pk}/test", follow=True)
    page = response.content.decode()
    assert "Test queued for pager" in page and "waiting for the worker" in page
    assert httpserver.log == [] and len(queued) == 1  # the web process sent nothing
    send_channel_test(channel.pk)  # what the worker runs
    page = client.get(f"/p/{project.slug}/channels/").content.decode()
    assert "waiting for the worker" not in page and '<span class="good">sent</span>' in page
    [(request, _)] = httpserver.log
    assert request.get_json()["type"] == "alert.test"
    assert request.get_json()["alert"]["kind"] == "unbounded_output"
    assert "X-Costwatch-Signature" in request.headers
    assert not Alert.objects.exists()


def test_the_test_button_shows_a_failure_once_the_worker_has_tried(client, user, project, httpserver):
    httpserver.expect_request("/slack", method="POST").respond_with_data("invalid_token", status=403)
    channel = Channel.objects.create(project=project, kind="slack", name="#costs", target=httpserver.url_for("/slack"))
    client.force_login(user)
    client.post(f"/p/{project.slug}/channels/{channel.pk}/test")
    send_channel_test(channel.pk)
    page = client.get(f"/p/{project.slug}/channels/").content.decode()
    assert "HTTP 403 Forbidden (permanent)" in page and "invalid_token" not in page


def test_the_channels_page_highlights_permanent_failures(client, user, project, open_alert, httpserver):
    httpserver.expect_request("/slack", method="POST").respond_with_data("no_service", status=404)
    Channel.objects.create(project=project, kind="slack", name="#costs", target=httpserver.url_for("/slack"))
    Alert.objects.all().delete()
    rules_evaluate(project=project, now=NOW)
    deliveries_send_due(now=NOW)
    assert Delivery.objects.get().permanent
    client.force_login(user)
    page = client.get(f"/p/{project.slug}/channels/").content.decode()
    assert "1 permanent failure" in page and "failed (permanent)" in page and "HTTP 404 Not Found" in page and "no_service" not in page


def test_open_alerts_selector_for_the_overview(project, open_alert):
    from budgets.selectors import open_alerts

    assert list(open_alerts(project=project)) == [open_alert]
    Alert.objects.filter(pk=open_alert.pk).update(state="resolved")
    assert list(open_alerts(project=project)) == []


def test_the_channels_page_never_shows_a_webhook_urls_secret_path(client, viewer, project):
    Channel.objects.create(project=project, kind="slack", name="#costs",
                           target="https://hooks.slack.com/services/T0/B0/s3cr3tT0k3n")
    client.force_login(viewer)
    page = client.get(f"/p/{project.slug}/channels/").content.decode()
    assert "hooks.slack.com" in page and "s3cr3tT0k3n" not in page and "/services/" not in page


def test_a_tiny_p_value_in_an_alerts_numbers_reads_as_1_98e_10():
    from django.template import Context, Template

    plain = Template("{{ v }}").render(Context({"v": 1.98e-10}))
    shown = Template("{% load costwatch_fmt %}{{ v|number }} {{ n|number }} {{ none|number }}").render(
        Context({"v": 1.98e-10, "n": 0.25, "none": None}))
    assert plain == "0.000000000198"  # what the alerts table printed before
    assert shown == "1.98e-10 0.25 n/a"

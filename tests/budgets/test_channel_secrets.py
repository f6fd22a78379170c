"""Channel targets and secrets are write-only everywhere: the API (tests/budgets/test_api.py),
the Channels page, the Django admin and the logs."""

import logging

import pytest

from budgets.models import Channel
from budgets.services import deliveries_send_due, rules_evaluate
from tests.factories import make_user

from .helpers import NOW, uncapped_feature

pytestmark = pytest.mark.django_db
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XYZsecretpath"


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("staffer", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def slack(project):
    return Channel.objects.create(project=project, kind="slack", name="#costs", target=SLACK_URL, secret="s3cret-sig")


def test_the_admin_never_shows_a_channels_target_or_secret(staff_client, slack):
    for url in ("/admin/budgets/channel/", f"/admin/budgets/channel/{slack.pk}/change/"):
        html = staff_client.get(url).content.decode()
        assert "XYZsecretpath" not in html and "s3cret-sig" not in html, url
    assert "hooks.slack.com" in staff_client.get("/admin/budgets/channel/").content.decode()  # recognisable


def test_saving_in_the_admin_with_the_fields_empty_keeps_target_and_secret(staff_client, slack, project):
    form = {"project": project.pk, "kind": "slack", "name": "#renamed", "target": "", "secret": "", "enabled": "on"}
    response = staff_client.post(f"/admin/budgets/channel/{slack.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    slack.refresh_from_db()
    assert (slack.name, slack.target, slack.secret) == ("#renamed", SLACK_URL, "s3cret-sig")
    form["target"] = "https://hooks.slack.com/services/T000/B000/new"
    staff_client.post(f"/admin/budgets/channel/{slack.pk}/change/", form)
    slack.refresh_from_db()
    assert slack.target.endswith("/new") and slack.secret == "s3cret-sig"


def test_adding_a_channel_in_the_admin_needs_a_target(staff_client, project):
    form = {"project": project.pk, "kind": "email", "name": "ops", "target": "", "secret": "", "enabled": "on"}
    assert staff_client.post("/admin/budgets/channel/add/", form).status_code == 200
    assert not Channel.objects.exists()


def test_the_channels_page_never_shows_the_target_path_or_secret(client, user, project, slack):
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/channels/").content.decode()
    assert "hooks.slack.com" in html and "XYZsecretpath" not in html and "s3cret-sig" not in html


def test_failed_sends_log_no_target_path(project, httpserver, settings, caplog):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    caplog.set_level(logging.INFO)
    uncapped_feature(project)
    Channel.objects.create(project=project, kind="webhook", name="hook", secret="s3cret-sig",
                           target=httpserver.url_for("/XYZsecretpath"))
    rules_evaluate(project=project, now=NOW)
    deliveries_send_due(now=NOW)
    assert "refused" in caplog.text
    assert "XYZsecretpath" not in caplog.text and "s3cret-sig" not in caplog.text

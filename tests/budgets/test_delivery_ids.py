"""Delivery is at least once, so every message carries its delivery's stable id: the same on
each attempt of one delivery (a receiver drops the repeat), another for every other delivery."""

import datetime as dt
import email

import pytest

from budgets.models import Channel, Delivery
from budgets.services import channel_test, deliveries_send_due, rules_evaluate

from .helpers import NOW, webhook_channel

pytestmark = pytest.mark.django_db
RETRY = NOW + dt.timedelta(seconds=60)  # the first backoff step


def test_a_retried_webhook_and_slack_post_repeat_their_delivery_id_and_two_deliveries_differ(project, firing,
                                                                                          httpserver):
    for path in ("/hook", "/slack"):
        httpserver.expect_ordered_request(path, method="POST").respond_with_data("busy", status=503)
    for path in ("/hook", "/slack"):
        httpserver.expect_ordered_request(path, method="POST").respond_with_data("", status=204)
    hook = webhook_channel(project, httpserver.url_for("/hook"), secret="s3cret")
    slack = webhook_channel(project, httpserver.url_for("/slack"), kind=Channel.SLACK, name="slack")
    rules_evaluate(project=project, now=NOW)
    assert deliveries_send_due(now=NOW) == 0  # both refused once: retried with the backoff
    assert deliveries_send_due(now=RETRY) == 2
    ids = {}
    for request, _response in httpserver.log:
        ids.setdefault(request.path, []).append(
            (request.headers["X-Costwatch-Delivery"], request.headers["Idempotency-Key"]))
    by_channel = {c.pk: str(d) for c, d in ((hook, Delivery.objects.get(channel=hook).pk),
                                            (slack, Delivery.objects.get(channel=slack).pk))}
    assert ids["/hook"] == [(by_channel[hook.pk],) * 2] * 2
    assert ids["/slack"] == [(by_channel[slack.pk],) * 2] * 2
    assert by_channel[hook.pk] != by_channel[slack.pk]


class RetryingSmtpSink:
    """Takes each message, but answers the first one with a temporary failure."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "451 4.3.0 try again later" if len(self.messages) == 1 else "250 OK"


def test_a_resent_email_repeats_its_message_id_and_another_delivery_has_its_own(project, firing, settings):
    from aiosmtpd.controller import Controller

    from costwatch.devtools import free_port

    sink = RetryingSmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
        settings.SITE_URL = "https://costwatch.example.com"
        for name in ("ops", "cto"):
            Channel.objects.create(project=project, kind="email", name=name, target=f"{name}@example.com")
        rules_evaluate(project=project, now=NOW)
        assert deliveries_send_due(now=NOW) == 1  # the first message sent is refused for now
        assert deliveries_send_due(now=RETRY) == 1
    finally:
        controller.stop()
    by_recipient = {}
    for message in sink.messages:
        by_recipient.setdefault(message["To"], []).append((message["Message-ID"], message["X-Costwatch-Delivery"]))
    retried = next(to for to, sends in by_recipient.items() if len(sends) == 2)
    other = next(to for to in by_recipient if to != retried)
    pk = {f"{d.channel.name}@example.com": d.pk for d in Delivery.objects.select_related("channel")}
    assert by_recipient[retried] == [(f"<costwatch-delivery-{pk[retried]}@costwatch.example.com>",
                                      str(pk[retried]))] * 2
    assert by_recipient[other] == [(f"<costwatch-delivery-{pk[other]}@costwatch.example.com>", str(pk[other]))]
    assert pk[retried] != pk[other]


def test_two_test_sends_of_one_channel_carry_different_ids(project, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=204)
    channel = webhook_channel(project, httpserver.url_for("/hook"))
    assert channel_test(channel=channel) == channel_test(channel=channel) == ""
    ids = [request.headers["X-Costwatch-Delivery"] for request, _ in httpserver.log]
    assert len(ids) == 2 and ids[0] != ids[1] and all(i.startswith("test-") for i in ids)

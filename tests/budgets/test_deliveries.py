"""Deliveries reach a real SMTP server and real HTTP servers; failures retry or stop for good."""

import datetime as dt
import email
import hashlib
import hmac
import json

import pytest
from django.test import override_settings

from budgets.models import Alert, Channel, Delivery
from budgets.services import backoff_seconds, deliveries_send_due, rules_evaluate
from costwatch.devtools import free_port
from costwatch.metrics.models import FeatureHour

from .helpers import NOW, only_rules, webhook_channel

pytestmark = pytest.mark.django_db
SECOND = dt.timedelta(seconds=1)


def _parts(envelope):
    message = email.message_from_bytes(envelope.content)
    bodies = {part.get_content_type(): part.get_payload(decode=True).decode() for part in message.walk()
              if not part.is_multipart()}
    return message, bodies


def test_an_alert_email_arrives_with_html_and_text_and_the_numbers(project, firing, smtp_server, settings):
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com, cto@example.com")
    rules_evaluate(project=project, now=NOW)
    assert deliveries_send_due(now=NOW) == 1
    [envelope] = smtp_server.messages
    assert sorted(envelope.rcpt_tos) == ["cto@example.com", "ops@example.com"]
    message, bodies = _parts(envelope)
    assert message["Subject"] == "[costwatch] Alert: Acme Support - Unbounded output on ticket-triage"
    assert "10.0% of calls set no output cap (threshold 5.0%)" in bodies["text/plain"]
    assert "uncapped calls 24h: 25" in bodies["text/plain"]
    assert f"{settings.SITE_URL}/p/{project.slug}/features/ticket-triage/" in bodies["text/html"]
    assert "<table" in bodies["text/html"] and "25" in bodies["text/html"]
    assert Delivery.objects.get().status == "sent"


def _the_one_post(project, httpserver, path, *, kind="webhook", secret="", now=NOW):
    """A rule cycle and a delivery sweep with one channel posting to `path` of the local server
    (which answers 200): the one request it received."""
    httpserver.expect_request(path, method="POST").respond_with_data("ok")
    webhook_channel(project, httpserver.url_for(path), kind=kind, secret=secret)
    rules_evaluate(project=project, now=now)
    deliveries_send_due(now=now)
    [(request, _)] = httpserver.log
    return request


def test_slack_gets_block_kit_with_the_numbers_and_a_link(project, firing, httpserver, settings):
    body = json.loads(_the_one_post(project, httpserver, "/slack", kind="slack").data)
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "actions"]
    assert "Unbounded output on ticket-triage" in body["blocks"][0]["text"]["text"]
    assert "10.0% of calls set no output cap" in body["blocks"][1]["text"]["text"]
    assert {"type": "mrkdwn", "text": "*uncapped calls 24h*\n25"} in body["blocks"][2]["fields"]
    assert body["blocks"][3]["elements"][0]["url"] == f"{settings.SITE_URL}/p/{project.slug}/features/ticket-triage/"


def test_webhooks_are_signed_with_hmac_sha256_over_timestamp_and_body(project, firing, httpserver):
    request = _the_one_post(project, httpserver, "/hook", secret="s3cret")
    parts = dict(p.split("=", 1) for p in request.headers["X-Costwatch-Signature"].split(","))
    expected = hmac.new(b"s3cret", parts["t"].encode() + b"." + request.data, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    body = json.loads(request.data)
    assert body["type"] == "alert.opened"
    alert = Alert.objects.get()
    assert body["alert"]["id"] == alert.pk and body["alert"]["feature"] == "ticket-triage"
    assert body["alert"]["numbers"]["uncapped_calls_24h"] == 25 and body["alert"]["state"] == "open"


def test_a_slack_500_is_retried_with_backoff_then_delivered(project, firing, httpserver):
    httpserver.expect_ordered_request("/slack", method="POST").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/slack", method="POST").respond_with_data("ok")
    webhook_channel(project, httpserver.url_for("/slack"), kind="slack")
    rules_evaluate(project=project, now=NOW)
    assert deliveries_send_due(now=NOW) == 0
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.permanent) == ("pending", 1, False)
    assert delivery.last_error.startswith("HTTP 500") and delivery.next_attempt_at == NOW + 60 * SECOND
    assert deliveries_send_due(now=NOW + 59 * SECOND) == 0
    assert deliveries_send_due(now=NOW + 60 * SECOND) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, "")
    assert len(httpserver.log) == 2


def test_a_slack_404_is_permanent(project, firing, httpserver):
    httpserver.expect_request("/slack", method="POST").respond_with_data("no_service", status=404)
    webhook_channel(project, httpserver.url_for("/slack"), kind="slack")
    rules_evaluate(project=project, now=NOW)
    deliveries_send_due(now=NOW)
    deliveries_send_due(now=NOW + dt.timedelta(hours=2))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.permanent, delivery.attempts) == ("failed", True, 1)
    assert delivery.last_error == "HTTP 404 Not Found"
    assert len(httpserver.log) == 1


def test_a_429_is_transient(project, firing, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("slow down", status=429)
    webhook_channel(project, httpserver.url_for("/hook"))
    rules_evaluate(project=project, now=NOW)
    deliveries_send_due(now=NOW)
    assert Delivery.objects.get().status == "pending"


def test_one_dead_channel_never_holds_up_another(project, firing, smtp_server):
    webhook_channel(project, f"http://127.0.0.1:{free_port()}/nobody-listens", name="dead")
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    rules_evaluate(project=project, now=NOW)
    assert deliveries_send_due(now=NOW) == 1
    assert len(smtp_server.messages) == 1
    dead = Delivery.objects.get(channel__name="dead")
    assert dead.status == "pending" and dead.last_error.startswith("connection failed")


@override_settings(DELIVERY_BACKOFF_SECONDS=[2, 7], DELIVERY_MAX_AGE_SECONDS=3 * 3600)
def test_backoff_steps_from_the_environment_then_hourly_until_the_max_age(project, firing):
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [2, 7, 3600, 3600]
    webhook_channel(project, f"http://127.0.0.1:{free_port()}/down")
    rules_evaluate(project=project, now=NOW)
    moments = [NOW, NOW + 2 * SECOND, NOW + 9 * SECOND, NOW + 3609 * SECOND, NOW + 7209 * SECOND]
    for moment in moments:
        deliveries_send_due(now=moment)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.permanent, delivery.attempts) == ("failed", False, 5)
    assert delivery.last_error.startswith("gave up after 5 attempts")


def test_a_resolved_condition_sends_exactly_one_resolve_message(project, firing, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("")
    webhook_channel(project, httpserver.url_for("/hook"))
    rules_evaluate(project=project, now=NOW)
    FeatureHour.objects.filter(project=project).update(uncapped_calls=0)
    for minute in (1, 30, 61, 62, 120):
        rules_evaluate(project=project, now=NOW + dt.timedelta(minutes=minute))
        deliveries_send_due(now=NOW + dt.timedelta(minutes=minute))
    types = [json.loads(request.data)["type"] for request, _ in httpserver.log]
    assert types == ["alert.opened", "alert.resolved"]
    assert json.loads(httpserver.log[1][0].data)["alert"]["state"] == "resolved"


def test_a_channel_limited_to_some_rules_only_gets_their_alerts(project, firing, httpserver):
    from budgets.models import Rule

    other = Rule.objects.create(project=project, kind="pro_default", params={})
    channel = webhook_channel(project, httpserver.url_for("/hook"))
    channel.rules.set([other])
    rules_evaluate(project=project, now=NOW)
    assert not Delivery.objects.exists()


def test_a_refused_email_address_is_a_permanent_failure(project, firing, smtp_server):
    Channel.objects.create(project=project, kind="email", name="gone", target="bounce@example.com")
    rules_evaluate(project=project, now=NOW)
    deliveries_send_due(now=NOW)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.permanent) == ("failed", True)
    assert delivery.last_error == "recipients refused: bounce@example.com"
    assert smtp_server.messages == []


def test_a_temporarily_refused_email_address_is_retried_not_given_up(project, firing, smtp_server):
    Channel.objects.create(project=project, kind="email", name="grey", target="greylisted@example.com")
    rules_evaluate(project=project, now=NOW)
    deliveries_send_due(now=NOW)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.permanent, delivery.attempts) == ("pending", False, 1)
    assert delivery.next_attempt_at > NOW
    assert delivery.last_error == "recipients refused: greylisted@example.com"


def test_slack_messages_escape_free_text_so_a_model_name_cannot_ping_the_channel(project, httpserver):
    from django.utils import timezone

    from costwatch.metrics.services import rollups_refresh_dirty
    from ingest.services import event_batch_ingest

    now = timezone.now()
    event = {"event_id": "x1", "timestamp": (now - dt.timedelta(minutes=5)).isoformat(), "feature": "chat",
             "model": "<!channel> <https://evil.example|click>", "input_tokens": 10, "output_tokens": 5}
    assert event_batch_ingest(project=project, events=[event]).accepted == 1
    rollups_refresh_dirty(project=project)
    only_rules(project, "unpriced_traffic")
    body = json.loads(_the_one_post(project, httpserver, "/slack", kind="slack", now=now).data)
    mrkdwn = body["text"] + json.dumps(body["blocks"][2]["fields"])
    assert "&lt;!channel&gt;" in mrkdwn and "&lt;https://evil.example|click&gt;" in mrkdwn
    assert "<!channel>" not in mrkdwn and "<https://evil" not in mrkdwn
    assert f"<{body['blocks'][-1]['elements'][0]['url']}|Open in costwatch>" in body["text"]  # our own link stays


def test_a_sender_whose_claim_was_taken_over_neither_sends_nor_records(project, firing, httpserver):
    from budgets.services import deliveries_claim_due, delivery_attempt

    webhook_channel(project, httpserver.url_for("/hook"))
    httpserver.expect_request("/hook").respond_with_data("ok")
    rules_evaluate(project=project, now=NOW)
    [(delivery_id, lease_end)] = deliveries_claim_due(now=NOW)
    # The lease ran out before this sender started; another sweep claimed the row meanwhile.
    [(again_id, new_lease_end)] = deliveries_claim_due(now=lease_end)
    assert again_id == delivery_id and new_lease_end > lease_end
    assert delivery_attempt(delivery_id=delivery_id, lease_end=lease_end, now=NOW) is False
    assert httpserver.log == []
    row = Delivery.objects.get(pk=delivery_id)
    assert (row.status, row.next_attempt_at, row.attempts) == (Delivery.PENDING, new_lease_end, 2)
    assert delivery_attempt(delivery_id=delivery_id, lease_end=new_lease_end, now=lease_end) is True
    assert len(httpserver.log) == 1 and Delivery.objects.get(pk=delivery_id).status == Delivery.SENT

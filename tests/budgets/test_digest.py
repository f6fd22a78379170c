"""The daily digest: once per project and local day, at DIGEST_LOCAL_HOUR in its timezone."""

import datetime as dt
import email
from decimal import Decimal

import pytest

from budgets.models import Channel, DigestSent
from budgets.services import digests_send_due, rules_evaluate
from budgets.services.digest import digest_claim
from costwatch.devtools import free_port
from costwatch.metrics.models import FeatureDay

from .helpers import feature, only_rules, uncapped_day

pytestmark = pytest.mark.django_db


def _day(project, feat, day, cost):
    FeatureDay.objects.create(project=project, feature=feat, environment="production", tier="lite", role="primary",
                              day=day, cost_usd=Decimal(cost), calls=10)


def test_the_digest_is_sent_once_at_8_local_with_spend_movers_and_open_alerts(project, smtp_server, settings):
    settings.DIGEST_LOCAL_HOUR = 8
    project.timezone = "Europe/Paris"
    project.save()
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    at_8_paris = dt.datetime(2026, 11, 26, 7, 5, tzinfo=dt.UTC)  # 08:05 in Paris
    chat, search = feature(project, "chat"), feature(project, "search-rank")
    for days_back in range(2, 9):
        _day(project, chat, dt.date(2026, 11, 26) - dt.timedelta(days=days_back), "1.00")
    _day(project, chat, dt.date(2026, 11, 25), "9.50")  # +8.50 against its 7-day mean
    _day(project, search, dt.date(2026, 11, 25), "0.25")
    uncapped_day(project, chat, now=at_8_paris)
    only_rules(project, "unbounded_output")
    rules_evaluate(project=project, now=at_8_paris)
    smtp_server.messages.clear()

    assert digests_send_due(now=at_8_paris - dt.timedelta(hours=1)) == 0  # 07:05 in Paris
    assert digests_send_due(now=at_8_paris) == 1
    assert digests_send_due(now=at_8_paris + dt.timedelta(minutes=30)) == 0
    [envelope] = smtp_server.messages
    message = email.message_from_bytes(envelope.content)
    assert message["Subject"] == "[costwatch] Acme Support: $9.75 on Wed 25 Nov"
    text = next(p.get_payload(decode=True).decode() for p in message.walk() if p.get_content_type() == "text/plain")
    assert "Spend that day: $9.75" in text
    assert "Month to date:  $16.75" in text  # Nov 18-24 at $1 a day, then 9.50 + 0.25 on the 25th
    assert text.index("chat: $9.50") < text.index("search-rank: $0.25")
    assert "change $8.50" in text
    assert "Open alerts (1)" in text and "unbounded_output on chat" in text
    assert DigestSent.objects.get().day == dt.date(2026, 11, 26)


def test_no_digest_without_an_email_channel(project, smtp_server, settings):
    settings.DIGEST_LOCAL_HOUR = 8
    assert digests_send_due(now=dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)) == 0
    assert not smtp_server.messages


def test_a_missed_digest_hour_is_made_up_later_that_day_and_a_failed_send_is_retried(project, smtp_server,
                                                                                       settings):
    settings.DIGEST_LOCAL_HOUR = 8
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    working_port, settings.EMAIL_PORT = settings.EMAIL_PORT, free_port()  # the mail server is down at first
    assert digests_send_due(now=dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)) == 0  # the 08:00 check never ran
    assert not DigestSent.objects.exists()
    settings.EMAIL_PORT = working_port
    assert digests_send_due(now=dt.datetime(2026, 11, 26, 11, 0, tzinfo=dt.UTC)) == 1
    assert digests_send_due(now=dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)) == 0
    assert len(smtp_server.messages) == 1


def test_a_digest_claimed_by_a_worker_that_died_is_sent_once_after_its_lease(project, smtp_server, settings):
    settings.DIGEST_LOCAL_HOUR = 8
    settings.DIGEST_LEASE_SECONDS = 600
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    at_9 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
    # A worker claimed today's digest at 09:00 and was killed before it sent anything.
    assert digest_claim(project=project, day=dt.date(2026, 11, 26), recipients=["ops@example.com"], now=at_9)
    assert digests_send_due(now=at_9 + dt.timedelta(minutes=5)) == 0  # its lease still holds
    assert not smtp_server.messages
    assert digests_send_due(now=at_9 + dt.timedelta(minutes=11)) == 1  # taken over after the lease
    assert digests_send_due(now=at_9 + dt.timedelta(minutes=30)) == 0
    assert len(smtp_server.messages) == 1
    assert DigestSent.objects.get().sent_at is not None


def test_the_digest_lists_the_top_recommended_savings(project, smtp_server, settings, ingest_client):
    from costwatch.metrics.services import project_refresh
    from tests.ingest.helpers import price
    from tests.savings.test_recommendations import pairs, pro_calls, send

    settings.DIGEST_LOCAL_HOUR = 0
    price("test-lite-1", tier="lite")
    price("test-pro-1", tier="pro", input_per_mtok="2.00", output_per_mtok="8.00")
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")
    send(ingest_client, pairs("good", [0.0] * 30) + pro_calls("good", 6) + pairs("thin", [0.0] * 5)
         + pro_calls("thin", 6))
    project_refresh(project=project)
    assert digests_send_due() == 1
    message = email.message_from_bytes(smtp_server.messages[-1].content)
    text = next(p.get_payload(decode=True).decode() for p in message.walk() if p.get_content_type() == "text/plain")
    savings = text.split("Top savings")[1]
    assert "good: route_to_lite" in savings
    assert "thin: route_to_lite" not in savings  # thin evidence is never in the digest

"""Leases on claimed work: a worker killed with SIGKILL mid-work leaves it to another worker.

Real Celery worker processes on the test database and broker. The first worker is caught
in the middle of its work (a row lock it must wait for, a receiver that does not answer),
killed with SIGKILL, and a second worker finishes the work once the lease has run out.
Leases are settings, shortened here.
"""

import asyncio
import datetime as dt
import email
import json
import os
import signal
import threading
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from werkzeug import Response

from budgets.models import Alert, Channel, Delivery, DigestSent, Notice
from costwatch.devtools import database_url, free_port
from costwatch.metrics.models import HourlyRollup
from ingest.models import Event, PriceRecompute
from ingest.services import event_batch_ingest
from ingest.tasks import recompute_costs
from tests.conftest import wait_for
from tests.ingest.helpers import event, price

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

QUIET_BEAT = {"RULES_INTERVAL_SECONDS": "3600", "ROLLUP_REFRESH_SECONDS": "3600", "DIGEST_CHECK_SECONDS": "3600"}


def sigkill(worker):
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(timeout=10)


def waiting_on_a_lock(statement_start: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                       [statement_start + "%"])
        return cursor.fetchone()[0] > 0


def test_a_recompute_whose_worker_dies_mid_walk_is_finished_by_another_after_the_lease(project, start_worker):
    env = {**QUIET_BEAT, "RECOMPUTE_LEASE_SECONDS": "3", "RECOMPUTE_BATCH_SIZE": "40",
           "RECOMPUTE_SWEEP_SECONDS": "1"}
    sent = [event(f"r{i}", model="late-model", input_tokens=1000 + i, output_tokens=100 + i) for i in range(200)]
    event_batch_ingest(project=project, events=sent)
    assert Event.objects.filter(project=project, cost_usd__isnull=True).count() == 200  # no price yet
    price("late-model", project=project, input_per_mtok="1.5", output_per_mtok="6")
    walk = list(Event.objects.filter(project=project).order_by("ts", "id").values_list("id", flat=True))
    # Another session holds one event of the third batch: the worker writes two batches, then waits.
    blocker = psycopg.connect(database_url())
    blocker.execute("SELECT 1 FROM ingest_event WHERE id = %s FOR UPDATE", [walk[100]])
    first = start_worker(extra_env=env)
    recompute = PriceRecompute.objects.create(project=project, models_matched=["late-model"])
    recompute_costs.delay(recompute.pk)
    wait_for(lambda: waiting_on_a_lock("UPDATE ingest_event"), timeout=60,
             message=f"the recompute to reach the locked batch\n{first.log()[-3000:]}")
    recompute.refresh_from_db()
    assert (recompute.state, recompute.events_changed, recompute.attempts) == ("running", 80, 1)

    sigkill(first)
    blocker.rollback()
    blocker.close()
    recompute.refresh_from_db()
    assert (recompute.state, recompute.events_changed) == ("running", 80)  # the killed batch left nothing
    second = start_worker(beat=True, extra_env=env)
    wait_for(lambda: PriceRecompute.objects.filter(pk=recompute.pk, state="done").exists(), timeout=90,
             message=f"another worker to finish the recompute\n{second.log()[-3000:]}")
    recompute.refresh_from_db()
    assert (recompute.events_changed, recompute.attempts) == (200, 2)  # every event counted once
    expected = {e["event_id"]: (e["input_tokens"] * Decimal("1.5") + e["output_tokens"] * 6) / 1_000_000
                for e in sent}
    stored = dict(Event.objects.filter(project=project).values_list("event_id", "cost_usd"))
    assert stored == expected


def test_a_delivery_whose_worker_dies_mid_send_is_sent_by_another_after_the_lease(project, httpserver,
                                                                                  start_worker):
    env = {**QUIET_BEAT, "DELIVERY_LEASE_SECONDS": "10", "DELIVERY_TIMEOUT_SECONDS": "3",
           "DELIVERY_SWEEP_SECONDS": "1"}
    received, delivery_ids, release = [], [], threading.Event()

    def receiver(request):
        received.append(json.loads(request.data))
        delivery_ids.append(request.headers.get("X-Costwatch-Delivery"))
        if len(received) == 1:
            release.wait(30)  # the first sender is killed while it waits for this answer
        return Response("", status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)
    now = timezone.now()
    channel = Channel.objects.create(project=project, kind="webhook", name="pager", target=httpserver.url_for("/hook"))
    alert = Alert.objects.create(project=project, kind="spend_budget", key="lease-test", state=Alert.OPEN,
                                 opened_at=now, last_fired_at=now, last_notified_at=now, numbers={"spend_usd": 12},
                                 message="Spend is over the budget")
    notice = Notice.objects.create(alert=alert, type="opened", created_at=now, numbers={"spend_usd": 12},
                                   message="Spend is over the budget")
    delivery = Delivery.objects.create(notice=notice, channel=channel, created_at=now,
                                       next_attempt_at=now - dt.timedelta(seconds=1))

    first = start_worker(beat=True, extra_env=env)
    wait_for(lambda: received, timeout=60, message=f"the first worker to send\n{first.log()[-3000:]}")
    sigkill(first)
    release.set()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 1)  # claimed, never settled

    second = start_worker(beat=True, extra_env=env)
    wait_for(lambda: Delivery.objects.filter(pk=delivery.pk, status="sent").exists(), timeout=90,
             message=f"another worker to send the delivery\n{second.log()[-3000:]}")
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.last_error == ""
    # At least once: the receiver saw the interrupted send and the one that finished, with the same
    # delivery id, so it can drop the repeat; costwatch recorded one delivery, sent once.
    assert len(received) == 2 and received[0]["alert"]["id"] == received[1]["alert"]["id"] == alert.pk
    assert delivery_ids == [str(delivery.pk)] * 2
    assert Delivery.objects.filter(notice=notice).count() == 1


class StallingSmtpServer:
    """A real SMTP server that holds its first sender at RCPT TO (until released) and takes
    whole messages from every later one."""

    def __init__(self):
        self.rcpts, self.messages, self.release = 0, [], threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpts += 1
        if self.rcpts == 1:  # wait in a thread, so the server goes on serving others meanwhile
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def stalling_smtp():
    from aiosmtpd.controller import Controller

    server = StallingSmtpServer()
    controller = Controller(server, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield server, controller.port
    server.release.set()
    controller.stop()


def test_a_digest_whose_worker_dies_mid_send_is_sent_once_by_another_after_the_lease(project, stalling_smtp,
                                                                                   start_worker):
    smtp, port = stalling_smtp
    env = {**QUIET_BEAT, "DIGEST_CHECK_SECONDS": "1", "DIGEST_LEASE_SECONDS": "5", "DIGEST_LOCAL_HOUR": "0",
           "EMAIL_URL": f"smtp://127.0.0.1:{port}", "EMAIL_TIMEOUT": "60", "SITE_URL": "https://cw.example.com"}
    Channel.objects.create(project=project, kind="email", name="ops", target="ops@example.com")

    first = start_worker(beat=True, extra_env=env)
    wait_for(lambda: smtp.rcpts, timeout=60, message=f"the first worker to start the digest\n{first.log()[-3000:]}")
    sigkill(first)
    [claim] = DigestSent.objects.filter(project=project)
    assert claim.sent_at is None and claim.lease_until is not None  # claimed, never sent
    assert smtp.messages == []  # killed in the middle of the SMTP exchange: nothing arrived
    smtp.release.set()

    second = start_worker(beat=True, extra_env=env)
    wait_for(lambda: DigestSent.objects.filter(pk=claim.pk, sent_at__isnull=False).exists(), timeout=60,
             message=f"another worker to send the digest\n{second.log()[-3000:]}")
    assert DigestSent.objects.filter(project=project).count() == 1
    [message] = smtp.messages  # the whole digest arrived once, from the second worker
    assert message["To"] == "ops@example.com" and message["Subject"].startswith(f"[costwatch] {project.name}: $")
    assert message["Message-ID"] == f"<costwatch-digest-{project.pk}-{claim.day.isoformat()}@cw.example.com>"
    assert smtp.rcpts == 2


def test_a_refresh_whose_worker_dies_mid_rebuild_is_redone_by_another(project, start_worker):
    sent = [event(f"h{i}", feature=f"feature-{i % 3}", input_tokens=700 + i, output_tokens=70 + i)
            for i in range(90)]
    event_batch_ingest(project=project, events=sent)
    # Another session holds the hourly rollups: the worker claims the new events, then waits to write.
    blocker = psycopg.connect(database_url())
    blocker.execute("LOCK TABLE metrics_hourlyrollup IN EXCLUSIVE MODE")
    first = start_worker(beat=True, extra_env={**QUIET_BEAT, "ROLLUP_REFRESH_SECONDS": "1"})
    wait_for(lambda: waiting_on_a_lock("INSERT INTO metrics_hourlyrollup"), timeout=60,
             message=f"the refresh to reach the locked table\n{first.log()[-3000:]}")
    sigkill(first)
    blocker.rollback()
    blocker.close()
    assert not HourlyRollup.objects.filter(project=project).exists()  # the killed claim left nothing

    second = start_worker(beat=True, extra_env={**QUIET_BEAT, "ROLLUP_REFRESH_SECONDS": "1"})
    wait_for(lambda: HourlyRollup.objects.filter(project=project).aggregate(n=Sum("calls"))["n"] == 90, timeout=60,
             message=f"another worker to refresh\n{second.log()[-3000:]}")
    totals = HourlyRollup.objects.filter(project=project).aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"))
    assert totals == {"i": sum(e["input_tokens"] for e in sent), "o": sum(e["output_tokens"] for e in sent)}

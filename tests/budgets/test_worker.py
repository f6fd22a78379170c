"""End to end with a real worker + beat through the real broker: events in, alert out to HTTP."""

import json

import pytest
from django.utils import timezone

from budgets.models import Alert, Channel, Delivery
from tests.conftest import wait_for

from .test_end_to_end import event

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_beat_refreshes_evaluates_and_delivers_an_alert_to_a_webhook(project, ingest_client, httpserver,
                                                                     start_worker):
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=204)
    Channel.objects.create(project=project, kind="webhook", name="pager", target=httpserver.url_for("/hook"),
                           secret="s3cret")
    events = [event(hours_ago=0.1 + i / 100, cap=None if i < 20 else 512) for i in range(100)]
    response = ingest_client.post("/api/v1/events", {"events": events}, format="json")
    assert response.status_code == 200 and response.json()["accepted"] == 100
    worker = start_worker(beat=True, extra_env={"RULES_INTERVAL_SECONDS": "1", "DELIVERY_SWEEP_SECONDS": "1",
                                                "ROLLUP_REFRESH_SECONDS": "1", "DIGEST_CHECK_SECONDS": "3600"})
    wait_for(lambda: httpserver.log, timeout=90, message=f"the webhook to be called\n{worker.log()[-3000:]}")
    body = json.loads(httpserver.log[0][0].data)
    assert body["type"] == "alert.opened"
    assert body["alert"]["kind"] == "unbounded_output" and body["alert"]["feature"] == "ticket-triage"
    assert body["alert"]["numbers"]["calls_24h"] == 100 and body["alert"]["numbers"]["uncapped_calls_24h"] == 20
    assert "X-Costwatch-Signature" in httpserver.log[0][0].headers
    alert = Alert.objects.get(kind="unbounded_output")
    assert alert.state == "open" and alert.opened_at <= timezone.now()
    wait_for(lambda: Delivery.objects.filter(status="sent").exists(), timeout=30, message="the delivery row")
    assert Delivery.objects.get().attempts == 1
    assert "budgets.tasks.evaluate_project" in worker.log()

"""Concurrent retries of one batch store it once; an unreachable database is a 503."""

import json
import threading

import pytest
from django.db import connections
from rest_framework.test import APIClient

from ingest.models import DirtyHour, Event, Feature
from tests.conftest import database_unreachable
from tests.ingest.helpers import event, recent

URL = "/api/v1/events"
THREADS = 6


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_the_same_batch_store_it_once(ingest_client, project):
    batch = json.dumps({"events": [event(f"e{i}", feature=f"feature-{i % 7}") for i in range(300)]})
    # Features exist already, so their first-sight insert cannot serialize the racing batches:
    # only the events' unique key stands between the retries and a double insert.
    warm_up = ingest_client.post(URL, data=json.dumps({"events": [event(f"w{i}", feature=f"feature-{i}")
                                                                  for i in range(7)]}),
                                 content_type="application/json")
    assert warm_up.json()["accepted"] == 7
    barrier = threading.Barrier(THREADS)
    results, failures = [], []

    def send():
        client = APIClient()  # each thread gets its own database connection from Django
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_client.plaintext_key}")
        try:
            barrier.wait(timeout=30)
            response = client.post(URL, data=batch, content_type="application/json")
            results.append((response.status_code, response.json()))
        except Exception as exc:  # reported below with the thread's failure
            failures.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert [status for status, _ in results] == [200] * THREADS
    assert sum(body["accepted"] for _, body in results) == 300
    assert sum(body["duplicates"] for _, body in results) == 300 * (THREADS - 1)
    assert Event.objects.filter(project=project, event_id__startswith="e").count() == 300
    assert Feature.objects.filter(project=project).count() == 7
    assert DirtyHour.objects.filter(project=project, hour=recent().replace(minute=0)).exists()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_database_is_a_503_with_retry_after(ingest_client):
    with database_unreachable():
        response = ingest_client.post(URL, data=json.dumps({"events": [event("a")]}),
                                      content_type="application/json")
    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    assert response.json()["errors"][0]["code"] == "database_unavailable"
    assert not Event.objects.exists()

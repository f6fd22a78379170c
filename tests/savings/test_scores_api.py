"""POST /api/v1/scores through HTTP with real PostgreSQL: per-item errors, last score wins, not_found, dirty marks."""

import json

import pytest
from rest_framework.test import APIClient

from ingest.models import DirtyHour, Event
from tests.factories import make_user
from tests.ingest.helpers import event

pytestmark = pytest.mark.django_db
URL = "/api/v1/scores"


def post(client, scores, **extra):
    return client.post(URL, data=json.dumps({"scores": scores}), content_type="application/json", **extra)


@pytest.fixture
def stored(ingest_client):
    response = ingest_client.post("/api/v1/events", data=json.dumps({"events": [event("a"), event("b")]}),
                                  content_type="application/json")
    assert response.status_code == 200, response.json()
    DirtyHour.objects.all().delete()


def quality(event_id):
    return Event.objects.get(event_id=event_id).quality


def test_scores_set_quality_and_mark_each_event(ingest_client, stored):
    response = post(ingest_client, [{"event_id": "a", "quality": 0.7, "source": "judge"},
                                    {"event_id": "b", "quality": 1}])
    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "rejected": 0, "errors": []}
    assert quality("a") == 0.7 and quality("b") == 1.0
    # One score mark per scored event: the refresh re-pairs it and rebuilds no hour.
    marks = {mark.scored_event_id: mark for mark in DirtyHour.objects.all()}
    events = {e.pk: e for e in Event.objects.filter(event_id__in=["a", "b"])}
    assert set(marks) == set(events)
    for pk, mark in marks.items():
        assert mark.first_event_id is None
        assert mark.hour == events[pk].ts.replace(minute=0, second=0, microsecond=0)


def source(event_id):
    return Event.objects.get(event_id=event_id).quality_source


def test_last_score_wins_in_a_batch_and_across_batches(ingest_client, stored):
    post(ingest_client, [{"event_id": "a", "quality": 0.2, "source": "judge"},
                         {"event_id": "a", "quality": 0.9, "source": "thumbs"}])
    assert (quality("a"), source("a")) == (0.9, "thumbs")
    post(ingest_client, [{"event_id": "a", "quality": 0.4, "source": "eval"}])
    assert (quality("a"), source("a")) == (0.4, "eval")
    post(ingest_client, [{"event_id": "a", "quality": 0.5}])  # no source: the last score's (none)
    assert (quality("a"), source("a")) == (0.5, "")
    assert source("b") == ""


def test_scores_are_charged_to_the_ingest_rate_limit_like_events(settings, project, ingest_client):
    settings.INGEST_RATE_LIMIT = 1  # a bucket of one batch (1000), refilled at 1 per second
    events = [event(f"r{i}") for i in range(600)]
    response = ingest_client.post("/api/v1/events", data=json.dumps({"events": events}),
                                  content_type="application/json")
    assert response.status_code == 200
    scores = [{"event_id": f"r{i}", "quality": 0.5, "source": "judge"} for i in range(500)]
    response = post(ingest_client, scores)  # 600 + 500 > 1000: the events and the scores share the bucket
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 90  # 100 tokens short at 1/s
    assert response.json()["errors"][0] == {"field": None, "code": "rate_limited", "message": (
        "over this project's ingest rate limit of 1 events/s; retry after " f"{response['Retry-After']} s")}
    assert not Event.objects.filter(quality__isnull=False).exists()
    assert post(ingest_client, scores[:300]).status_code == 200  # 400 tokens left
    assert Event.objects.filter(quality=0.5, quality_source="judge").count() == 300


@pytest.mark.parametrize(("item", "field", "code"), [
    ({"event_id": "a", "quality": 1.5}, "quality", "max_value"),
    ({"event_id": "a", "quality": -0.1}, "quality", "min_value"),
    ({"event_id": "a", "quality": "0.5"}, "quality", "type"),
    ({"event_id": "a", "quality": True}, "quality", "type"),
    ({"event_id": "a"}, "quality", "required"),
    ({"quality": 0.5}, "event_id", "required"),
    ({"event_id": 5, "quality": 0.5}, "event_id", "type"),
    ({"event_id": "", "quality": 0.5}, "event_id", "min_length"),
    ({"event_id": "x" * 129, "quality": 0.5}, "event_id", "max_length"),
    ({"event_id": "a", "quality": 0.5, "source": "s" * 51}, "source", "max_length"),
    ({"event_id": "a", "quality": 0.5, "source": 3}, "source", "type"),
    ({"event_id": "missing", "quality": 0.5}, "event_id", "not_found"),
])
def test_a_bad_item_is_rejected_alone(ingest_client, stored, item, field, code):
    response = post(ingest_client, [{"event_id": "b", "quality": 0.6}, item])
    assert response.status_code == 207
    body = response.json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    (error,) = body["errors"]
    assert (error["index"], error["field"], error["code"]) == (1, field, code)
    assert quality("b") == 0.6 and quality("a") is None


def test_every_item_rejected_is_400_with_counts(ingest_client, stored):
    response = post(ingest_client, [{"event_id": "nope", "quality": 0.5}])
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "event_id", "code": "not_found", "index": 0, "event_id": "nope",
                                          "message": "no stored event has this event_id (yet); retry later"}]


@pytest.mark.parametrize(("body", "code"), [
    ({}, "required"), ({"scores": {}}, "type"), ({"scores": []}, "min_length"),
    ({"scores": [{"event_id": "a", "quality": 0.5}] * 1001}, "max_length"),
])
def test_the_body_itself_refused(ingest_client, stored, body, code):
    response = ingest_client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "scores"
    assert response.json()["errors"][0]["code"] == code


def test_scopes_and_roles(project, read_client, stored):
    assert post(read_client, [{"event_id": "a", "quality": 0.5}]).status_code == 403
    viewer = make_user("victor")
    project.memberships.create(user=viewer, role="viewer")
    session = APIClient()
    session.force_login(viewer)
    response = session.post(f"{URL}?project={project.slug}", data=json.dumps({"scores": [
        {"event_id": "a", "quality": 0.5}]}), content_type="application/json")
    assert response.status_code == 403
    assert quality("a") is None

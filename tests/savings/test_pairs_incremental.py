"""The savings pairs follow only the changed events (docs/savings.md#evidence): batches in any
order, late scores on either side, an earlier Lite call arriving later, and hours rebuilt in
place. After every refresh the stored pairs equal a pairing done in plain Python over all
stored events; a score-only refresh rebuilds no hour."""

import json
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from costwatch.metrics.models import FeatureHour, HourlyRollup, SavingsPair
from costwatch.metrics.services import project_refresh
from ingest.models import DirtyHour, Event
from tests.ingest.helpers import iso, recent
from tests.savings.test_evidence import lite, prices, send, shadow  # noqa: F401 (prices: autouse fixture)

pytestmark = pytest.mark.django_db
REACH = timedelta(days=1)


def expected_pairs() -> dict[str, tuple]:
    """{pro event_id: (lite event_id, lite quality, pro quality)}, paired in plain Python."""
    events = list(Event.objects.values("id", "event_id", "ts", "role", "tier", "quality", "feature_id",
                                       "request_id", "parent_event_id"))
    by_event_id = {e["event_id"]: e for e in events}
    pairs = {}
    for p in events:
        if p["role"] not in ("shadow", "escalation") or p["tier"] != "pro" or p["quality"] is None:
            continue
        if p["parent_event_id"]:
            candidates = [by_event_id.get(p["parent_event_id"])]
        elif p["request_id"]:
            candidates = [e for e in events if e["request_id"] == p["request_id"]]
        else:
            candidates = []
        candidates = [e for e in candidates if e and e["role"] == "primary" and e["tier"] == "lite"
                      and e["quality"] is not None and e["feature_id"] == p["feature_id"]
                      and abs(e["ts"] - p["ts"]) <= REACH]
        if candidates:
            partner = min(candidates, key=lambda e: (e["ts"], e["id"]))
            pairs[p["event_id"]] = (partner["event_id"], partner["quality"], p["quality"])
    return pairs


def stored_pairs() -> dict[str, tuple]:
    names = dict(Event.objects.values_list("id", "event_id"))
    return {names[p.pro_event_id]: (names[p.lite_event_id], p.lite_quality, p.pro_quality)
            for p in SavingsPair.objects.all()}


def score(client, **qualities):
    body = {"scores": [{"event_id": event_id, "quality": quality} for event_id, quality in qualities.items()]}
    response = client.post("/api/v1/scores", data=json.dumps(body), content_type="application/json")
    assert response.json()["accepted"] == len(qualities)


def refresh_and_compare(project) -> tuple:
    result = project_refresh(project=project)
    assert stored_pairs() == expected_pairs()
    return result


def test_pairs_follow_batches_in_any_order_and_late_scores(project, ingest_client):
    send(ingest_client, [
        shadow("s1", parent="l1", quality=0.9),  # its Lite call comes in a later batch
        shadow("s2", quality=0.6, request_id="r2"),  # paired by request id, later
        shadow("s3", parent="l3", quality=0.9),
        lite("l3"),  # not scored yet
        lite("x", 0.5, request_id="other"),
    ])
    refresh_and_compare(project)
    assert not SavingsPair.objects.exists()

    send(ingest_client, [lite("l1", 0.8), lite("l2-late", 0.7, request_id="r2", timestamp=iso(recent(minutes=10)))])
    refresh_and_compare(project)
    assert set(stored_pairs()) == {"s1", "s2"}

    # An earlier Lite call of the same request arrives later still: it is the partner now.
    send(ingest_client, [lite("l2-early", 0.3, request_id="r2", timestamp=iso(recent(hours=2)))])
    refresh_and_compare(project)
    assert stored_pairs()["s2"][0] == "l2-early"

    # Late scores on both sides: re-paired without rebuilding any hour.
    score(ingest_client, s1=0.4, l3=0.95, **{"l2-early": 0.35})
    assert DirtyHour.objects.filter(scored_event_id__isnull=False).count() == 3
    result = refresh_and_compare(project)
    assert (result.events_added, result.hours_rebuilt) == (0, 0)
    assert stored_pairs()["s1"] == ("l1", 0.8, 0.4) and stored_pairs()["s3"] == ("l3", 0.95, 0.9)
    assert not DirtyHour.objects.exists()


def test_hours_rebuilt_in_place_keep_the_pairs_exact(project, ingest_client):
    send(ingest_client, [lite("l1", 0.8), shadow("s1", parent="l1", quality=0.9),
                         lite("l2", 0.6, request_id="r", timestamp=iso(recent(hours=20))),
                         shadow("s2", quality=0.7, request_id="r", timestamp=iso(recent(hours=3)))])
    refresh_and_compare(project)
    assert len(stored_pairs()) == 2
    # A recompute or a settings change marks hours for a rebuild; the pairs there are rebuilt too.
    hours = {e.ts.replace(minute=0, second=0, microsecond=0) for e in Event.objects.all()}
    DirtyHour.objects.bulk_create([DirtyHour(project=project, hour=hour, created_at=timezone.now())
                                   for hour in hours])
    SavingsPair.objects.update(lite_quality=0.0)  # stale rows must be replaced, not kept
    result = refresh_and_compare(project)
    assert result.hours_rebuilt == len(hours)


def rollup_calls() -> int:
    """Calls in the hourly rollups (FeatureHour and HourlyRollup must agree)."""
    feature_hours = FeatureHour.objects.aggregate(n=Sum("calls"))["n"]
    assert feature_hours == HourlyRollup.objects.aggregate(n=Sum("calls"))["n"]
    return feature_hours


def test_an_event_scored_before_its_batch_is_rolled_up_still_counts(project, ingest_client):
    """The refresh finds a new batch's events by their xmin, which the score's UPDATE replaces:
    such an event must still reach every rollup, once."""
    send(ingest_client, [lite("l1"), shadow("s1", parent="l1", quality=0.9), lite("l2", 0.5)])
    score(ingest_client, l1=0.7)  # before any refresh has claimed the batch
    marks = list(DirtyHour.objects.filter(first_event_id__isnull=True))
    assert len(marks) == 1 and marks[0].scored_event_id is None  # a rebuild mark for l1's hour
    refresh_and_compare(project)
    assert rollup_calls() == 3
    assert stored_pairs() == {"s1": ("l1", 0.7, 0.9)}
    # Once the batch is rolled up, a score only re-pairs: nothing is rebuilt or counted again.
    score(ingest_client, l1=0.2, s1=0.3)
    assert DirtyHour.objects.filter(scored_event_id__isnull=False).count() == 2
    result = refresh_and_compare(project)
    assert (result.events_added, result.hours_rebuilt) == (0, 0)
    assert rollup_calls() == 3


@pytest.mark.django_db(transaction=True)
def test_scores_racing_new_batches_on_other_connections_lose_no_event(project, ingest_client):
    """Batches and their scores committed by other connections, refreshes in between: every
    event is in the rollups once, and the pairs equal the plain-Python pairing."""
    for i in range(6):
        send(ingest_client, [lite(f"l{i}"), shadow(f"s{i}", parent=f"l{i}", quality=0.5)])
        score(ingest_client, **{f"l{i}": 0.1 * i})
        if i % 2:
            refresh_and_compare(project)
    refresh_and_compare(project)
    assert rollup_calls() == 12 == Event.objects.count()


def test_a_pro_call_whose_lite_partner_stops_qualifying_pairs_with_the_next_one(project, ingest_client):
    """The Pro call and the second Lite call of its request are outside the rebuilt hour."""
    send(ingest_client, [lite("first", 0.8, request_id="r", timestamp=iso(recent(hours=6))),
                         lite("second", 0.6, request_id="r", timestamp=iso(recent(hours=4))),
                         shadow("pro", quality=0.9, request_id="r", timestamp=iso(recent(hours=2)))])
    refresh_and_compare(project)
    assert stored_pairs() == {"pro": ("first", 0.8, 0.9)}
    first = Event.objects.get(event_id="first")
    Event.objects.filter(pk=first.pk).update(tier="pro")  # changed in place, e.g. a re-price
    DirtyHour.objects.create(project=project, hour=first.ts.replace(minute=0, second=0, microsecond=0),
                             created_at=timezone.now())
    refresh_and_compare(project)
    assert stored_pairs() == {"pro": ("second", 0.6, 0.9)}

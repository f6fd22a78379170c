"""The write path: one COPY + INSERT ... ON CONFLICT per batch, dedup, features, dirty hours."""

from datetime import UTC

import pytest

from ingest.models import DirtyHour, Event, Feature, SeenModel
from ingest.services import event_batch_ingest, event_rows_store
from tests.ingest.helpers import event, iso, recent

pytestmark = pytest.mark.django_db


def test_a_batch_is_stored_with_every_field_and_features_created_on_first_sight(project):
    result = event_batch_ingest(project=project, events=[
        event("a", feature="search-rank", provider="google", max_output_tokens=512, finish_reason="length",
              latency_ms=840, ttft_ms=120, environment="staging", role="escalation", request_id="r1",
              parent_event_id="p1", route_reason="low_confidence", confidence=0.4, quality=1,
              attributes={"customer": "acme", "n": 3}),
        event("b", feature="ticket-triage"),
    ])
    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, 0)
    stored = Event.objects.select_related("feature").get(event_id="a")
    assert stored.feature.name == "search-rank" and stored.feature.project_id == project.id
    assert (stored.provider, stored.max_output_tokens, stored.finish_reason, stored.latency_ms) == (
        "google", 512, "length", 840)
    assert (stored.environment, stored.role, stored.route_reason, stored.confidence, stored.quality) == (
        "staging", "escalation", "low_confidence", 0.4, 1.0)
    assert stored.attributes == {"customer": "acme", "n": 3}
    assert stored.cap_known is True
    assert sorted(Feature.objects.filter(project=project).values_list("name", flat=True)) == [
        "search-rank", "ticket-triage"]
    assert list(SeenModel.objects.filter(project=project).values_list("model", flat=True)) == ["test-lite-1"]


def test_repeats_inside_a_batch_and_across_retries_are_stored_once(project):
    first = event_batch_ingest(project=project, events=[event("a"), event("b"), event("a", output_tokens=5)])
    retry = event_batch_ingest(project=project, events=[event("a"), event("b"), event("c")])
    assert (first.accepted, first.duplicates) == (2, 1)
    assert (retry.accepted, retry.duplicates) == (1, 2)
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["a", "b", "c"]
    assert Event.objects.get(event_id="a").output_tokens == 200  # the first one wins


def test_the_same_event_id_in_another_project_is_not_a_duplicate(project):
    from tests.factories import make_project

    other = make_project("Other Co")
    event_batch_ingest(project=project, events=[event("a")])
    result = event_batch_ingest(project=other, events=[event("a")])
    assert result.accepted == 1
    assert Event.objects.filter(event_id="a").count() == 2


def test_it_marks_each_touched_utc_hour_dirty_in_the_same_transaction(project):
    t1, t2 = recent(hours=3), recent(hours=1)
    event_batch_ingest(project=project, events=[
        event("a", timestamp=iso(t1)), event("b", timestamp=iso(t1.replace(minute=59))),
        event("c", timestamp=t2.astimezone().isoformat()),
    ])
    hours = sorted(DirtyHour.objects.filter(project=project).values_list("hour", flat=True))
    expected = sorted({t1.replace(minute=0), t2.replace(minute=0)})
    assert [h.astimezone(UTC) for h in hours] == expected
    event_batch_ingest(project=project, events=[event("a", timestamp=iso(t1))])  # all duplicates
    assert DirtyHour.objects.filter(project=project).count() == 2


def test_event_rows_store_takes_feature_names_and_fills_defaults(project):
    ts = recent()
    rows = [{"event_id": f"s{i}", "ts": ts, "feature": "seeded", "model": "m", "input_tokens": i,
             "output_tokens": 1, "tier": "lite"} for i in range(3)]
    result = event_rows_store(project=project, rows=rows)
    again = event_rows_store(project=project, rows=rows, mark_dirty=False)
    assert (result.accepted, result.duplicates, again.accepted, again.duplicates) == (3, 0, 0, 3)
    stored = Event.objects.get(event_id="s2")
    assert (stored.input_tokens, stored.environment, stored.role, stored.service_tier, stored.tier) == (
        2, "production", "primary", "standard", "lite")
    assert stored.cost_usd is None and stored.received_at is not None
    assert DirtyHour.objects.filter(project=project).count() == 1


def test_otlp_style_events_without_a_cap_are_stored_as_cap_unknown(project):
    event_batch_ingest(project=project, events=[event("a"), event("b", max_output_tokens=None),
                                                event("c", max_output_tokens=64)], cap_known_default=False)
    caps = dict(Event.objects.values_list("event_id", "cap_known"))
    assert caps == {"a": False, "b": True, "c": True}


def test_a_retry_holding_stored_events_falls_back_to_on_conflict_and_marks_its_new_hour(project):
    event_batch_ingest(project=project, events=[event("a"), event("b")])
    DirtyHour.objects.all().delete()
    # The direct COPY is refused by the unique key; the staging path stores only c.
    result = event_batch_ingest(project=project, events=[event("a"), event("b"), event("c", timestamp=iso(recent(5)))])
    assert (result.accepted, result.duplicates) == (1, 2)
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["a", "b", "c"]
    assert [h.astimezone(UTC) for h in DirtyHour.objects.values_list("hour", flat=True)] == [
        recent(5).replace(minute=0)]


def test_a_retry_that_also_brings_a_new_feature_points_its_events_at_the_feature_that_was_kept(project):
    event_batch_ingest(project=project, events=[event("a")])
    # The direct attempt creates "brand-new", then its COPY is refused by a's repeat and rolled
    # back with the feature; the staging attempt creates the feature again, under another id.
    result = event_batch_ingest(project=project, events=[event("a"), event("b", feature="brand-new")])
    assert (result.accepted, result.duplicates) == (1, 1)
    stored = Event.objects.get(event_id="b")
    assert stored.feature_id == Feature.objects.get(project=project, name="brand-new").id


TRICKY = "tab\there\nnew line\\back slash\r\\N é 💸"


def test_strings_with_copy_special_characters_are_stored_exactly(project):
    attributes = {"note": TRICKY, "k\tey": "\\N"}
    result = event_batch_ingest(project=project, events=[
        event(TRICKY, request_id="\\N", finish_reason="a\\tb", environment="\\", attributes=attributes)])
    assert (result.accepted, result.rejected) == (1, 0)
    stored = Event.objects.get()
    assert (stored.event_id, stored.request_id, stored.finish_reason, stored.environment) == (
        TRICKY, "\\N", "a\\tb", "\\")
    assert stored.attributes == attributes

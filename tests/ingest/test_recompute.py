"""Re-pricing stored events: service, command, dirty hours, and the Celery task on a real worker."""

from datetime import UTC, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ingest.models import DirtyHour, Event, PriceRecompute
from ingest.recompute import costs_recompute
from ingest.services import event_batch_ingest
from tests.conftest import wait_for
from tests.ingest.helpers import event, iso, mtok, price, recent


def dirty_hours(project):
    return {h.astimezone(UTC) for h in DirtyHour.objects.filter(project=project).values_list("hour", flat=True)}


@pytest.mark.django_db
def test_recompute_changes_only_affected_events_and_marks_their_hours_dirty(project):
    t_old, t_new = recent(hours=30), recent(hours=3)
    event_batch_ingest(project=project, events=[
        event("old", model="mover", timestamp=iso(t_old)), event("new", model="mover", timestamp=iso(t_new)),
        event("other", model="stays", timestamp=iso(t_new)),
    ])
    price("stays", input_per_mtok="1", output_per_mtok="1")
    DirtyHour.objects.all().delete()
    price("mover", effective_from=t_new - timedelta(hours=1), input_per_mtok="2", output_per_mtok="4")
    result = costs_recompute(project=project, models=["mover"], batch_size=1)
    assert (result.events_scanned, result.events_changed) == (2, 1)
    assert (result.cost_before, result.cost_after) == (0, mtok(1000, "2") + mtok(200, "4"))
    assert Event.objects.get(event_id="new").cost_usd == mtok(1000, "2") + mtok(200, "4")
    assert Event.objects.get(event_id="old").cost_usd is None
    assert Event.objects.get(event_id="other").cost_usd is None  # not in this recompute's models
    assert dirty_hours(project) == {t_new.replace(minute=0)}


@pytest.mark.django_db
def test_a_recompute_loads_the_price_book_once_however_many_batches_it_walks(project, monkeypatch):
    from ingest.pricing import PriceBook

    event_batch_ingest(project=project, events=[event(f"e{i}", model="mover") for i in range(5)])
    price("mover", input_per_mtok="2", output_per_mtok="4")
    loads = []
    original = PriceBook.load.__func__
    monkeypatch.setattr(PriceBook, "load", classmethod(lambda cls, **kw: loads.append(kw) or original(cls, **kw)))
    result = costs_recompute(project=project, models=["mover"], batch_size=2)
    assert (result.events_scanned, result.events_changed, len(loads)) == (5, 5, 1)


@pytest.mark.django_db
def test_a_price_added_during_a_long_recompute_is_used_for_the_rest_of_the_walk(project, monkeypatch):
    import ingest.recompute as recompute

    event_batch_ingest(project=project, events=[event(f"e{i}", model="mover") for i in range(4)])
    price("mover", input_per_mtok="2", output_per_mtok="4")
    fetch = recompute._batch_fetch
    batches = []

    def fetch_then_change_prices(*args):
        rows = fetch(*args)
        batches.append(rows)
        if len(batches) == 1:  # while the first batch is in hand, a newer price arrives
            price("mover", effective_from=recent(hours=5), input_per_mtok="3", output_per_mtok="6")
        return rows

    monkeypatch.setattr(recompute, "_batch_fetch", fetch_then_change_prices)
    costs_recompute(project=project, models=["mover"], batch_size=2)
    costs = {e.event_id: e.cost_usd for e in Event.objects.all()}
    assert costs == {"e0": mtok(1000, "3") + mtok(200, "6"), "e1": mtok(1000, "3") + mtok(200, "6"),
                     "e2": mtok(1000, "3") + mtok(200, "6"), "e3": mtok(1000, "3") + mtok(200, "6")}


@pytest.mark.django_db
def test_a_dry_run_previews_without_writing(project):
    event_batch_ingest(project=project, events=[event("a", model="p1"), event("b", model="p1")])
    price("p1", input_per_mtok="1", output_per_mtok="1")
    DirtyHour.objects.all().delete()
    preview = costs_recompute(project=project, dry_run=True)
    assert (preview.events_changed, preview.cost_after) == (2, 2 * mtok(1200, "1"))
    assert Event.objects.filter(cost_usd__isnull=True).count() == 2
    assert not DirtyHour.objects.exists()


@pytest.mark.django_db
def test_recompute_costs_command_reprices_since_a_date(project):
    t1, t2 = recent(hours=48), recent(hours=2)
    event_batch_ingest(project=project, events=[event("a", model="cmd-model", timestamp=iso(t1)),
                                                event("b", model="cmd-model", timestamp=iso(t2))])
    price("cmd-model", input_per_mtok="1", output_per_mtok="1")
    out = StringIO()
    call_command("recompute_costs", "--since", iso(t2 - timedelta(hours=1)), "--project", project.name, stdout=out)
    assert "1 of 1 events re-priced" in out.getvalue()
    assert Event.objects.get(event_id="b").cost_usd == mtok(1200, "1")
    assert Event.objects.get(event_id="a").cost_usd is None
    call_command("recompute_costs", stdout=out)
    assert Event.objects.get(event_id="a").cost_usd == mtok(1200, "1")


@pytest.mark.django_db
def test_recompute_costs_rejects_bad_input_clearly(project):
    with pytest.raises(CommandError, match="--since: 'last tuesday' is not an ISO date"):
        call_command("recompute_costs", "--since", "last tuesday")
    with pytest.raises(CommandError, match="--project: no project"):
        call_command("recompute_costs", "--project", "nope")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_api_queues_a_recompute_that_a_real_worker_runs(project, manage_client, start_worker):
    import json

    event_batch_ingest(project=project, events=[event("a", model="queued-model")])
    DirtyHour.objects.all().delete()
    start_worker()
    response = manage_client.post("/api/v1/prices", data=json.dumps(
        {"model": "queued-model", "input_per_mtok": "3", "output_per_mtok": "3"} | {
            "effective_from": "2000-01-01T00:00:00Z"}), content_type="application/json")
    recompute_id = response.json()["recompute"]["id"]
    done = wait_for(lambda: PriceRecompute.objects.filter(pk=recompute_id, state="done").first(), timeout=60,
                    message="the worker to run the recompute")
    assert done.events_changed == 1
    assert Event.objects.get(event_id="a").cost_usd == mtok(1200, "3")
    assert dirty_hours(project) == {recent().replace(minute=0)}

"""The daily PRICES_SOURCE import: a LiteLLM-format file served by a real local HTTP server."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from costwatch.projects.models import AuditLog
from ingest.models import Event, Price, PriceImport, PriceRecompute
from ingest.recompute import recompute_run
from ingest.services import event_batch_ingest
from ingest.tasks import import_prices_source
from tests.ingest.helpers import EPOCH, event, mtok, recent

pytestmark = pytest.mark.django_db


def _litellm(models: dict) -> str:
    """{model: (input $/1M, output $/1M)} in LiteLLM's per-token format."""
    return json.dumps({name: {"litellm_provider": "openai", "mode": "chat",
                              "input_cost_per_token": inp / 1_000_000, "output_cost_per_token": out / 1_000_000}
                       for name, (inp, out) in models.items()})


@pytest.fixture
def source(httpserver, settings):
    settings.PRICES_SOURCE = httpserver.url_for("/model_prices.json")

    def serve(body: str, status=200):
        httpserver.clear()
        httpserver.expect_request("/model_prices.json").respond_with_data(body, status=status,
                                                                        content_type="application/json")
    return serve


def _periods(model):
    return list(Price.objects.filter(project__isnull=True, model=model).order_by("effective_from")
                .values_list("effective_from", "input_per_mtok", "output_per_mtok"))


def test_the_daily_import_adds_a_dated_period_keeps_history_and_prices_earlier_unpriced_calls(project, source):
    assert settings.CELERY_BEAT_SCHEDULE["import-prices"]["task"] == "ingest.tasks.import_prices_source"
    source(_litellm({"zz-pro-1": (3, 15)}))
    assert import_prices_source() == "ok"
    assert _periods("zz-pro-1") == [(EPOCH, 3, 15)]

    before = recent(hours=3)
    event_batch_ingest(project=project, events=[
        event("priced", model="zz-pro-1", timestamp=before.isoformat(), input_tokens=1000, output_tokens=200),
        event("unpriced", model="zz-new-1", timestamp=before.isoformat(), input_tokens=1000, output_tokens=200)])
    assert Event.objects.get(event_id="unpriced").cost_usd is None

    source(_litellm({"zz-pro-1": (2, 10), "zz-new-1": (1, 2)}))
    started = timezone.now()
    assert import_prices_source() == "ok"

    [first, second] = _periods("zz-pro-1")
    assert first == (EPOCH, 3, 15)  # history kept
    assert second[1:] == (2, 10) and started <= second[0] <= timezone.now()  # the new period starts at the import
    assert _periods("zz-new-1") == [(EPOCH, 1, 2)]  # new to the catalogue: from 2000-01-01
    run = PriceImport.objects.order_by("-started_at").first()
    assert (run.status, run.added, run.changed) == ("ok", ["zz-new-1 [openai/standard]"],
                                                     ["zz-pro-1 [openai/standard]"])
    assert run.repriced_models == ["zz-new-1"]
    audit = AuditLog.objects.get(target_type="price_import", target_id=str(run.pk))
    assert audit.after["added"] == run.added and audit.after["changed"] == run.changed

    [recompute] = PriceRecompute.objects.filter(models_matched=["zz-new-1"])
    recompute_run(recompute_id=recompute.pk)
    assert Event.objects.get(event_id="unpriced").cost_usd == mtok(1000, "1") + mtok(200, "2")
    assert Event.objects.get(event_id="priced").cost_usd == mtok(1000, "3") + mtok(200, "15")  # unchanged


@pytest.mark.parametrize(("body", "status", "reason"), [
    ('{"zz-pro-1": {"mode": "chat", "input_cost_per_token": 1e-06,', 200, "is not JSON"),
    ("[1, 2, 3]", 200, "expected a JSON object"),
    ('{"zz-pro-1": {"mode": "chat", "input_cost_per_token": "cheap", "output_cost_per_token": 1e-06}}', 200,
     "not a number"),
    ("gone", 503, "answered HTTP 503"),
])
def test_a_broken_source_changes_nothing_and_is_shown(project, source, client, user, body, status, reason):
    source(_litellm({"zz-pro-1": (3, 15)}))
    import_prices_source()
    catalogue = sorted(Price.objects.values_list("model", "effective_from", "input_per_mtok"))
    source(body, status=status)
    assert import_prices_source() == "failed"
    assert sorted(Price.objects.values_list("model", "effective_from", "input_per_mtok")) == catalogue
    failed = PriceImport.objects.order_by("-started_at", "-id").first()
    assert failed.status == "failed" and reason in failed.error and failed.added == []
    client.force_login(user)
    page = client.get(f"/p/{project.slug}/prices/").content.decode()
    assert "failed and changed nothing" in page and reason in page
    assert "Last refreshed" in page and settings.PRICES_SOURCE in page


def test_an_unreachable_source_is_recorded_and_an_unset_one_does_nothing(settings):
    settings.PRICES_SOURCE = ""
    assert import_prices_source() == "off" and not PriceImport.objects.exists()
    from costwatch.devtools import free_port

    settings.PRICES_SOURCE = f"http://127.0.0.1:{free_port()}/prices.json"
    assert import_prices_source() == "failed"
    assert "cannot fetch" in PriceImport.objects.get().error


def test_the_prices_page_names_the_seed_source(client, user, project):
    client.force_login(user)
    page = client.get(f"/p/{project.slug}/prices/").content.decode()
    assert "litellm==1.110.2" in page and "model_prices_and_context_window_backup.json" in page
    assert "Never refreshed since the seed." in page


def test_import_times_are_utc(project, source):
    source(_litellm({"zz-pro-1": (3, 15)}))
    import_prices_source()
    assert PriceImport.objects.get().started_at.tzinfo is not None
    assert PriceImport.objects.get().started_at > datetime.now(UTC) - timedelta(minutes=5)

"""The Prices page in a real headless Chromium: add an override, read the preview, confirm."""

import pytest

from ingest.models import Price, PriceRecompute
from ingest.services import event_batch_ingest
from tests.conftest import browser_login
from tests.ingest.helpers import event, mtok

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_previews_and_saves_an_override_for_an_unpriced_model(live_server, page, user, project):
    event_batch_ingest(project=project, events=[event("a", model="browser-model", input_tokens=2000,
                                                      output_tokens=100)])
    errors = browser_login(page, live_server.url, user)
    page.goto(f"{live_server.url}/p/{project.slug}/prices/")
    assert "browser-model" in page.locator('[data-testid="unpriced-models"]').inner_text()
    assert page.locator("nav.sidenav a.active").inner_text() == "Prices"

    page.fill("input[name=model]", "browser-model")
    page.select_option("select[name=tier]", "pro")
    page.fill("input[name=input_per_mtok]", "1.25")
    page.fill("input[name=output_per_mtok]", "10")
    page.fill("input[name=effective_from]", "2000-01-01 00:00")
    page.get_by_role("button", name="Preview", exact=True).click()
    preview = page.locator('[data-testid="price-preview"]')
    assert preview.locator('[data-testid="preview-events"]').inner_text() == "1"
    expected = mtok(2000, "1.25") + mtok(100, "10")
    assert preview.locator('[data-testid="preview-after"]').inner_text() == f"${expected:.6f}"
    assert not Price.objects.filter(model="browser-model").exists()

    preview.locator("text=Save price and re-price events").click()
    page.wait_for_selector("text=Price for browser-model saved")
    saved = Price.objects.get(model="browser-model")
    assert (saved.project_id, saved.tier, saved.input_per_mtok) == (project.id, "pro", mtok(1_000_000, "1.25"))
    assert PriceRecompute.objects.get(project=project).models_matched == ["browser-model"]
    assert errors == []

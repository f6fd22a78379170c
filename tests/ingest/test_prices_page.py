"""/p/<slug>/prices/: lists prices, previews a new one (events and dollars), saves on confirm."""

import pytest

from costwatch.projects.models import AuditLog
from ingest.models import Event, Price, PriceRecompute
from ingest.services import event_batch_ingest
from tests.factories import make_user
from tests.ingest.helpers import event, mtok, price

pytestmark = pytest.mark.django_db

FORM = {"scope": "override", "model": "page-model", "provider": "", "service_tier": "standard", "tier": "pro",
        "input_per_mtok": "2", "output_per_mtok": "10", "effective_from": "2000-01-01 00:00"}


def test_viewers_see_prices_and_unpriced_models_but_no_form(client, project):
    viewer = make_user("victor")
    from costwatch.projects.services import membership_set

    membership_set(project=project, user=viewer, role="viewer")
    price("listed-model", project=project, input_per_mtok="1.5", output_per_mtok="3")
    event_batch_ingest(project=project, events=[event("a", model="nobody-prices-me")])
    client.force_login(viewer)
    response = client.get(f"/p/{project.slug}/prices/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "listed-model" in html and "1.500000" in html
    assert "nobody-prices-me" in html and 'data-testid="unpriced-models"' in html
    assert "Add a price" not in html
    assert client.post(f"/p/{project.slug}/prices/add", FORM).status_code == 302
    assert not Price.objects.filter(model="page-model").exists()


def test_another_projects_prices_page_is_a_404(client, project):
    stranger = make_user("mallory")
    client.force_login(stranger)
    assert client.get(f"/p/{project.slug}/prices/").status_code == 404


def test_an_admin_previews_then_confirms_an_override(client, user, project):
    event_batch_ingest(project=project, events=[event("a", model="page-model", input_tokens=1000, output_tokens=100),
                                                event("b", model="page-model", input_tokens=3000, output_tokens=0)])
    client.force_login(user)
    preview = client.post(f"/p/{project.slug}/prices/add", FORM)
    html = preview.content.decode()
    expected_after = mtok(1000, "2") + mtok(100, "10") + mtok(3000, "2")
    assert preview.status_code == 200
    assert 'data-testid="preview-events">2<' in html
    assert f'data-testid="preview-after">${expected_after:.6f}<' in html
    assert not Price.objects.filter(model="page-model").exists()  # nothing saved by a preview
    assert not AuditLog.objects.filter(target_type="price").exists()
    saved = client.post(f"/p/{project.slug}/prices/add", FORM | {"confirm": "1"})
    assert saved.status_code == 302
    stored = Price.objects.get(model="page-model")
    assert stored.project_id == project.id and stored.created_by == user.username
    recompute = PriceRecompute.objects.get(project=project)
    assert recompute.models_matched == ["page-model"]
    assert AuditLog.objects.get(target_type="price").actor == user
    assert Event.objects.get(event_id="a").cost_usd is None  # repriced by the queued task, not the page


def test_only_staff_may_add_to_the_global_catalogue(client, user, project):
    client.force_login(user)
    refused = client.post(f"/p/{project.slug}/prices/add", FORM | {"scope": "global", "confirm": "1"})
    assert refused.status_code == 400
    assert not Price.objects.filter(model="page-model").exists()
    staff = make_user("sam", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.post(f"/p/{project.slug}/prices/add", FORM | {"scope": "global", "confirm": "1"}).status_code == 302
    assert Price.objects.get(model="page-model").project_id is None


def test_a_bad_price_shows_the_field_error(client, user, project):
    client.force_login(user)
    response = client.post(f"/p/{project.slug}/prices/add", FORM | {"output_per_mtok": ""})
    assert response.status_code == 400
    assert "input_per_mtok and output_per_mtok go together" in response.content.decode()


def test_a_global_recompute_lists_only_this_projects_models_on_its_prices_page(client, user, project):
    from ingest.catalogue import glob_tie
    from tests.factories import make_project

    other = make_project("Other Co")
    event_batch_ingest(project=project, events=[event("a", model="shared-lite-1")])
    event_batch_ingest(project=other, events=[event("b", model="shared-secret-model")])
    PriceRecompute.objects.create(project=None, models_matched=["shared-lite-1", "shared-secret-model"])
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/prices/").content.decode()
    assert "shared-lite-1" in html and "shared-secret-model" not in html
    # a glob tie in this project is never explained with another project's private model
    price("shared-secret-model", project=other)
    price("shared-*", project=project)
    assert glob_tie(project=project, model="*t-model", provider="", service_tier="standard") is None


def test_the_preview_counts_the_unpriced_calls_a_new_model_price_prices(client, user, project):
    event_batch_ingest(project=project, events=[event("a", model="page-model"), event("b", model="page-model"),
                                                event("c", model="page-model", cost_usd="0.5")])
    client.force_login(user)
    html = client.post(f"/p/{project.slug}/prices/add", FORM | {"effective_from": ""}).content.decode()
    assert 'data-testid="preview-events">3<' in html  # the client-priced call changes source too
    assert 'data-testid="preview-priced">2<' in html


def test_an_unpriced_models_link_opens_the_form_with_the_model_filled_in(client, user, project):
    event_batch_ingest(project=project, events=[event("a", model="acme/odd model")])
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/prices/").content.decode()
    assert 'href="?model=acme/odd%20model#add-price"' in html
    filled = client.get(f"/p/{project.slug}/prices/?model=acme/odd%20model").content.decode()
    assert 'name="model" value="acme/odd model"' in filled


@pytest.mark.parametrize(("cap", "shown"), [(1000, ">12<"), (10, ">10<")])
def test_the_preview_reprices_a_bounded_sample_and_counts_the_rest_with_a_bounded_query(
        client, user, project, monkeypatch, cap, shown):
    from ingest import catalogue

    monkeypatch.setattr(catalogue, "PREVIEW_MAX_EVENTS", 5)
    monkeypatch.setattr(catalogue, "PREVIEW_COUNT_CAP", cap)
    event_batch_ingest(project=project, events=[event(f"e{n}", model="page-model", input_tokens=1000, output_tokens=0)
                                                for n in range(12)])
    client.force_login(user)
    html = client.post(f"/p/{project.slug}/prices/add", FORM).content.decode()
    assert f'data-testid="preview-matching"{shown}' in html
    assert ('more than <b data-testid="preview-matching"' in html) == (cap < 12)
    assert 'data-testid="preview-events">5<' in html  # only the first 5 were re-priced here
    assert f'data-testid="preview-after">${5 * mtok(1000, "2"):.6f}<' in html
    assert "the first 5 of them" in html

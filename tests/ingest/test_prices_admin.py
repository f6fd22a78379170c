"""Staff manage the global catalogue in the Django admin: added through the same checks, audited."""

import pytest

from costwatch.projects.models import AuditLog
from ingest.models import Price
from tests.factories import make_user

pytestmark = pytest.mark.django_db

FORM = {"model": "admin-model", "provider": "", "service_tier": "standard", "tier": "lite",
        "input_per_mtok": "0.5", "output_per_mtok": "1.5", "effective_from_0": "2026-01-01",
        "effective_from_1": "00:00:00", "note": ""}


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("staffer", is_staff=True, is_superuser=True))
    return client


def test_the_changelist_filters_and_searches(staff_client):
    Price.objects.create(model="findable-model", input_per_mtok=1, output_per_mtok=1, effective_from="2026-01-01T00:00Z")
    response = staff_client.get("/admin/ingest/price/?q=findable&service_tier__exact=standard")
    assert response.status_code == 200
    assert "findable-model" in response.content.decode()


def test_adding_a_price_in_the_admin_is_validated_and_audited(staff_client):
    response = staff_client.post("/admin/ingest/price/add/", FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    price = Price.objects.get(model="admin-model")
    assert price.project_id is None and price.created_by == "staffer"
    assert AuditLog.objects.filter(target_type="price", action="create", target_id=str(price.pk)).exists()
    bad = staff_client.post("/admin/ingest/price/add/", FORM | {"model": "admin-2", "output_per_mtok": ""})
    assert bad.status_code == 200
    assert "input_per_mtok and output_per_mtok go together" in bad.content.decode()
    assert not Price.objects.filter(model="admin-2").exists()


def test_deleting_a_price_in_the_admin_is_audited(staff_client):
    price = Price.objects.create(model="doomed", input_per_mtok=1, output_per_mtok=1,
                                 effective_from="2026-01-01T00:00Z")
    response = staff_client.post(f"/admin/ingest/price/{price.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Price.objects.filter(pk=price.pk).exists()
    audit = AuditLog.objects.get(target_type="price", action="delete")
    assert audit.before["model"] == "doomed"

import datetime as dt

import pytest

from costwatch.projects.models import AuditLog, Membership
from ingest.models import DirtyHour
from tests.dashboard.pagedata import alpha_beta_rows, store
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def settings_post(**overrides):
    values = {"action": "settings", "timezone": "UTC", "dimensions": "", "ingest_rate_limit": "",
              "huge_cap_tokens": "8192"}
    values.update(overrides)
    return values


def test_changing_huge_cap_marks_rollups_dirty_and_is_audited(admin_client, project):
    rows = alpha_beta_rows()
    store(project, rows)
    assert not DirtyHour.objects.filter(project=project).exists()  # the refresh claimed them all
    response = admin_client.post(f"/p/{project.slug}/settings/", settings_post(huge_cap_tokens="4096"))
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.huge_cap_tokens == 4096
    hours = {r["ts"].replace(minute=0, second=0, microsecond=0) for r in rows}
    assert set(DirtyHour.objects.filter(project=project).values_list("hour", flat=True)) == hours
    entry = AuditLog.objects.get(project=project, target_type="project_settings")
    assert entry.before == {"huge_cap_tokens": 8192} and entry.after == {"huge_cap_tokens": 4096}
    page = admin_client.get(f"/p/{project.slug}/settings/").content.decode()
    assert "Rollups are being rebuilt" in page and "project_settings" in page


def test_changing_dimensions_marks_dirty_but_rate_limit_does_not(admin_client, project):
    store(project, alpha_beta_rows())
    admin_client.post(f"/p/{project.slug}/settings/", settings_post(ingest_rate_limit="50"))
    project.refresh_from_db()
    assert project.ingest_rate_limit == 50
    assert not DirtyHour.objects.filter(project=project).exists()
    admin_client.post(f"/p/{project.slug}/settings/", settings_post(ingest_rate_limit="50",
                                                                   dimensions="customer, plan"))
    project.refresh_from_db()
    assert project.dimensions == ["customer", "plan"]
    assert DirtyHour.objects.filter(project=project).exists()


def test_more_than_three_dimensions_are_refused(admin_client, project):
    response = admin_client.post(f"/p/{project.slug}/settings/", settings_post(dimensions="a, b, c, d"))
    assert response.status_code == 200
    assert "At most 3 dimensions (got 4)." in response.content.decode()
    project.refresh_from_db()
    assert project.dimensions == []


def test_viewer_sees_settings_but_cannot_change_them(client, project, viewer):
    client.force_login(viewer)
    page = client.get(f"/p/{project.slug}/settings/").content.decode()
    assert "Only project admins can change settings." in page and 'name="huge_cap_tokens"' not in page
    response = client.post(f"/p/{project.slug}/settings/", settings_post(huge_cap_tokens="100"))
    assert response.status_code == 404
    project.refresh_from_db()
    assert project.huge_cap_tokens == 8192
    response = client.post(f"/p/{project.slug}/settings/", {"action": "member", "username": "victor",
                                                             "role": "admin"})
    assert response.status_code == 404
    assert Membership.objects.get(project=project, user=viewer).role == "viewer"


def test_admin_adds_and_promotes_members_by_username(admin_client, project):
    bob = make_user("bob")
    admin_client.post(f"/p/{project.slug}/settings/", {"action": "member", "username": "bob", "role": "viewer"})
    assert Membership.objects.get(project=project, user=bob).role == "viewer"
    admin_client.post(f"/p/{project.slug}/settings/", {"action": "member", "username": "bob", "role": "admin"})
    assert Membership.objects.get(project=project, user=bob).role == "admin"
    actions = list(AuditLog.objects.filter(project=project, target_type="membership", target_id="bob")
                   .values_list("action", flat=True))
    assert sorted(actions) == ["add_member", "change_member"]
    response = admin_client.post(f"/p/{project.slug}/settings/", {"action": "member", "username": "nobody",
                                                                  "role": "viewer"})
    assert "No user with that username" in response.content.decode()


def test_changing_timezone_rebuilds_days_in_the_new_zone(admin_client, project):
    from costwatch.metrics.models import FeatureDay
    from costwatch.metrics.services import rollups_refresh_dirty

    rows = alpha_beta_rows()  # Oct 10 12:00 UTC etc.
    store(project, rows)
    admin_client.post(f"/p/{project.slug}/settings/", settings_post(timezone="Pacific/Kiritimati"))  # UTC+14
    project.refresh_from_db()
    assert project.timezone == "Pacific/Kiritimati"
    rollups_refresh_dirty(project=project)
    days = set(FeatureDay.objects.filter(project=project).values_list("day", flat=True))
    # 12:00 UTC is 02:00 the next day in UTC+14: every event moves one local day on, none stay behind
    assert days == {(r["ts"] + dt.timedelta(hours=14)).date() for r in rows}

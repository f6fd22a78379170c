"""Dashboard pages need a login and show only the user's own projects."""

import pytest

from costwatch.projects.models import ApiKey
from tests.conftest import database_unreachable
from tests.factories import make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/p/acme-support/", "/p/acme-support/keys/"])
def test_dashboard_urls_redirect_anonymous_users_to_login(client, project, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_then_a_single_project_user_lands_on_its_overview(client, user, project):
    response = client.post("/accounts/login/", {"username": "alice", "password": user.raw_password}, follow=True)
    assert response.redirect_chain[-1][0] == f"/p/{project.slug}/"
    assert project.name in response.content.decode()


def test_another_projects_pages_are_404_not_403(client, project):
    outsider = make_user("mallory")
    make_project("Other Team", owner=outsider)
    client.force_login(outsider)
    assert client.get(f"/p/{project.slug}/").status_code == 404
    assert client.get(f"/p/{project.slug}/keys/").status_code == 404


def test_a_viewer_sees_keys_but_cannot_issue_or_revoke(client, project):
    viewer = make_user("victor")
    from costwatch.projects.services import api_key_issue, membership_set

    membership_set(project=project, user=viewer, role="viewer")
    issued = api_key_issue(project=project, scopes=["ingest"])
    client.force_login(viewer)
    page = client.get(f"/p/{project.slug}/keys/").content.decode()
    assert issued.api_key.key_id in page
    assert "Issue key" not in page
    assert client.post(f"/p/{project.slug}/keys/new", {"scopes": ["read"]}).status_code == 404
    assert client.post(f"/p/{project.slug}/keys/{issued.api_key.key_id}/revoke").status_code == 404
    assert ApiKey.objects.get(pk=issued.api_key.pk).revoked_at is None


def test_an_admin_issues_a_key_and_sees_it_exactly_once(client, user, project):
    client.force_login(user)
    response = client.post(f"/p/{project.slug}/keys/new", {"name": "web", "scopes": ["ingest", "read"]}, follow=True)
    key = ApiKey.objects.get(project=project, name="web")
    page = response.content.decode()
    assert f"cw_{key.key_id}_" in page and "will not be shown again" in page
    again = client.get(f"/p/{project.slug}/keys/").content.decode()
    assert "will not be shown again" not in again


def test_a_new_keys_secret_is_kept_in_no_session_and_no_table_and_not_cached(client, user, project):
    from django.contrib.sessions.models import Session
    from django.db import connection

    client.force_login(user)
    response = client.post(f"/p/{project.slug}/keys/new", {"name": "web", "scopes": ["ingest"]})
    assert response.status_code == 200  # shown in the answer to the POST itself, no redirect
    assert "no-store" in response["Cache-Control"]
    plaintext = response.content.decode().split('<pre class="key">')[1].split("</pre>")[0]
    secret = plaintext.split("_", 2)[2]  # cw_<key id>_<secret>; the secret may hold "_" itself
    assert plaintext.startswith("cw_") and len(secret) >= 24
    for session in Session.objects.all():
        assert plaintext not in str(session.get_decoded()) and secret not in session.session_data
    with connection.cursor() as cursor:  # every text column of every table
        cursor.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                       "'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json')")
        for table, column in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{secret}%"])
            assert cursor.fetchone()[0] == 0, (table, column)
    assert "no-store" not in client.get(f"/p/{project.slug}/keys/").get("Cache-Control", "")


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert body["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_the_database_is_unreachable(client):
    with database_unreachable():
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down" and body["database"].startswith("error:")

"""API keys: cw_<id>_<secret>, shown once, stored hashed, scoped, revocable."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from costwatch.projects.auth import HasReadScope
from costwatch.projects.models import ApiKey, AuditLog
from costwatch.projects.services import api_key_issue, api_key_revoke

pytestmark = pytest.mark.django_db


def test_it_issues_a_key_in_the_documented_format_and_stores_only_its_hash(project):
    issued = api_key_issue(project=project, scopes=["ingest", "read"])
    match = re.fullmatch(r"cw_([A-Za-z0-9]{4,24})_([A-Za-z0-9_-]{24,})", issued.plaintext)
    assert match, issued.plaintext
    key_id, secret = match.groups()
    stored = ApiKey.objects.get(key_id=key_id)
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiKey.objects.filter(pk=stored.pk).values().get())
    assert stored.scopes == ["ingest", "read"]
    assert AuditLog.objects.filter(action="issue", target_id=key_id).exists()


def test_a_valid_key_authenticates_as_its_project(project):
    issued = api_key_issue(project=project, scopes=["ingest"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    response = client.get("/api/v1/key")
    assert response.status_code == 200
    assert response.json() == {"project": project.slug, "key_id": issued.api_key.key_id, "scopes": ["ingest"]}


@pytest.mark.parametrize(
    "header",
    ["Bearer cw_nosuchkey_" + "a" * 30, "Bearer not-a-key", "Token abc", "Bearer "],
)
def test_unknown_or_malformed_keys_get_401_with_an_error_body(project, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/key")
    assert response.status_code == 401
    (error,) = response.json()["errors"]
    assert error["field"] is None
    assert error["message"]


def test_a_wrong_secret_for_a_real_key_id_is_rejected(project):
    issued = api_key_issue(project=project, scopes=["ingest"])
    tampered = issued.plaintext[:-4] + ("AAAA" if not issued.plaintext.endswith("AAAA") else "BBBB")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tampered}")
    assert client.get("/api/v1/key").status_code == 401


def test_a_revoked_key_stops_working_at_once(project):
    issued = api_key_issue(project=project, scopes=["ingest"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    assert client.get("/api/v1/key").status_code == 200
    assert api_key_revoke(api_key=issued.api_key) is True
    assert api_key_revoke(api_key=issued.api_key) is False  # a second revoke changes nothing
    assert client.get("/api/v1/key").status_code == 401
    assert AuditLog.objects.filter(action="revoke", target_id=issued.api_key.key_id).count() == 1


class ReadOnlyView(APIView):
    permission_classes = [HasReadScope]

    def get(self, request):
        return Response({"ok": True})


def test_a_key_without_the_required_scope_gets_403_naming_the_scope(project):
    factory = APIRequestFactory()
    ingest_only = api_key_issue(project=project, scopes=["ingest"])
    reader = api_key_issue(project=project, scopes=["read"])
    denied = ReadOnlyView.as_view()(factory.get("/x", HTTP_AUTHORIZATION=f"Bearer {ingest_only.plaintext}"))
    allowed = ReadOnlyView.as_view()(factory.get("/x", HTTP_AUTHORIZATION=f"Bearer {reader.plaintext}"))
    assert denied.status_code == 403
    assert "read" in denied.data["errors"][0]["message"]
    assert allowed.status_code == 200


def test_last_used_is_written_at_most_once_a_minute(project):
    issued = api_key_issue(project=project, scopes=["ingest"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    client.get("/api/v1/key")
    first = ApiKey.objects.get(pk=issued.api_key.pk).last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/key")
    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at == first
    assert not [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]  # fresh as loaded: no statement
    ApiKey.objects.filter(pk=issued.api_key.pk).update(last_used_at=timezone.now() - timedelta(seconds=61))
    client.get("/api/v1/key")
    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at > first


def test_unknown_scopes_are_refused(project):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="unknown scope"):
        api_key_issue(project=project, scopes=["admin"])


def test_a_key_is_loaded_with_its_project_exactly_as_the_orm_loads_them(project):
    from costwatch.projects.models import Project
    from costwatch.projects.selectors import api_key_for_plaintext

    Project.objects.filter(pk=project.pk).update(dimensions=["customer", "plan"])
    issued = api_key_issue(project=project, scopes=["ingest", "read"])
    loaded = api_key_for_plaintext(issued.plaintext)
    orm = ApiKey.objects.select_related("project").get(pk=issued.api_key.pk)
    assert [getattr(loaded, f.attname) for f in ApiKey._meta.concrete_fields] == [
        getattr(orm, f.attname) for f in ApiKey._meta.concrete_fields]
    assert [getattr(loaded.project, f.attname) for f in Project._meta.concrete_fields] == [
        getattr(orm.project, f.attname) for f in Project._meta.concrete_fields]
    assert loaded.scopes == ["ingest", "read"] and loaded.project.dimensions == ["customer", "plan"]
    api_key_revoke(api_key=issued.api_key)
    assert api_key_for_plaintext(issued.plaintext) is None

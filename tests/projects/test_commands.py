"""create_project, add_member and issue_key from the command line."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from costwatch.projects.models import Membership, Project
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_create_project_derives_the_slug_and_makes_the_owner_admin():
    owner = make_user("bob")
    out = io.StringIO()
    call_command("create_project", "Search Ranking", "--timezone", "Europe/Paris", "--owner", "bob", stdout=out)
    project = Project.objects.get(slug="search-ranking")
    assert project.timezone == "Europe/Paris"
    assert Membership.objects.get(project=project, user=owner).role == "admin"
    assert "search-ranking" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["X", "--timezone", "Mars/Olympus"], "time zone"), (["Y", "--owner", "ghost"], "--owner"), (["!!!"], "slug")],
)
def test_create_project_fails_clearly_on_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_project", *args)


def test_create_project_refuses_a_duplicate(project):
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_project", project.name)


def test_add_member_accepts_a_slug_or_a_name(project):
    make_user("carol")
    call_command("add_member", "--project", project.name, "--user", "carol", "--role", "viewer", stdout=io.StringIO())
    assert Membership.objects.get(project=project, user__username="carol").role == "viewer"
    call_command("add_member", "--project", project.slug, "--user", "carol", "--role", "admin", stdout=io.StringIO())
    assert Membership.objects.get(project=project, user__username="carol").role == "admin"


def test_add_member_names_an_unknown_project():
    make_user("dan")
    with pytest.raises(CommandError, match="--project"):
        call_command("add_member", "--project", "nope", "--user", "dan", "--role", "viewer")


def test_issue_key_prints_a_working_key_on_its_last_line(project):
    out = io.StringIO()
    call_command("issue_key", "--project", project.slug, "--scope", "ingest", "--scope", "read", stdout=out,
                 stderr=io.StringIO())
    key = out.getvalue().strip().splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.get("/api/v1/key")
    assert response.status_code == 200
    assert response.json()["scopes"] == ["ingest", "read"]

"""Small factories for test data."""

from django.contrib.auth import get_user_model

from costwatch.projects.services import membership_set, project_create


def make_user(username="alice", password="correct-horse-battery", **extra):
    User = get_user_model()
    user = User.objects.create_user(username=username, password=password, **extra)
    user.raw_password = password
    return user


def make_project(name="Acme Support", *, owner=None, viewers=(), timezone_name="UTC", slug=""):
    project = project_create(name=name, slug=slug, timezone_name=timezone_name, owner=owner)
    for viewer in viewers:
        membership_set(project=project, user=viewer, role="viewer")
    return project

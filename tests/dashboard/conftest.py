import pytest

from tests.factories import make_project, make_user


@pytest.fixture
def viewer(db, project):
    from costwatch.projects.services import membership_set

    user = make_user("victor")
    membership_set(project=project, user=user, role="viewer")
    return user


@pytest.fixture
def outsider(db):
    other = make_user("oscar")
    make_project("Other Team", owner=other)
    return other


@pytest.fixture
def admin_client(client, user):
    client.force_login(user)
    return client

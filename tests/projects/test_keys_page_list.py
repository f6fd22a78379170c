"""The API keys page shows 200 keys and says how many there are; the CSV has every key, never a secret."""

import csv
import io

import pytest

from costwatch.projects.models import ApiKey
from costwatch.projects.services import api_key_issue

pytestmark = pytest.mark.django_db


def test_the_keys_page_shows_200_keys_and_streams_all_without_secrets(client, user, project):
    issued = [api_key_issue(project=project, scopes=["ingest"], name=f"service-{n:03d}", actor=user)
              for n in range(205)]
    client.force_login(user)
    html = client.get(f"/p/{project.slug}/keys/").content.decode()
    assert html.count("<code>cw_") == 200
    assert "Showing 200 of 205 keys, the newest first; all 205 are in the CSV." in html
    response = client.get(f"/p/{project.slug}/keys/", {"format": "csv"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    keys = list(csv.DictReader(io.StringIO(body)))
    assert sorted(k["name"] for k in keys) == [f"service-{n:03d}" for n in range(205)]
    assert {k["key_id"] for k in keys} == set(ApiKey.objects.values_list("key_id", flat=True))
    assert {k["scopes"] for k in keys} == {"ingest"}
    for key in issued:
        secret = key.plaintext.split("_", 2)[2]
        assert secret not in body and key.plaintext not in body
    assert not any(hash_value in body for hash_value in ApiKey.objects.values_list("secret_hash", flat=True))


def test_the_page_that_shows_a_new_key_links_its_csv_to_the_keys_page(client, user, project):
    client.force_login(user)
    response = client.post(f"/p/{project.slug}/keys/new", {"scopes": ["read"], "name": "fresh"})
    html = response.content.decode()
    assert 'data-testid="issued-key"' in html
    assert f'href="/p/{project.slug}/keys/?format=csv"' in html

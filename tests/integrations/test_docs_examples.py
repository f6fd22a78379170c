"""The examples of the README and docs/sending-events.md stay true: every code block of README.md
runs as written (against a live server instead of 127.0.0.1:8000) or says why it is not run."""

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from costwatch.devtools import database_url
from costwatch.metrics.services import rollups_refresh_dirty
from costwatch.projects.models import Membership, Project
from costwatch.projects.services import api_key_issue
from ingest.models import Event
from ingest.seed import prices_seed_load

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "sending-events.md"
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:<!-- (?P<skip>not run[^>]*) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S)


def readme_blocks() -> list[dict]:
    return [m.groupdict() for m in BLOCK.finditer(README.read_text())]


@pytest.mark.django_db
def test_the_documented_curl_event_is_accepted_and_stored_as_described(project, ingest_client):
    body = re.search(r"-d '(\{\"events\".*?\})'\n", DOC.read_text(), re.S).group(1)
    recent = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = re.sub(r'"timestamp": "[^"]+"', f'"timestamp": "{recent}"', body)

    response = ingest_client.post("/api/v1/events", data=body, content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": 0, "errors": [], "warnings": []}
    row = Event.objects.get(project=project)
    assert (row.feature.name, row.model, row.input_tokens, row.cached_input_tokens, row.output_tokens,
            row.reasoning_tokens, row.max_output_tokens, row.request_id) == (
        "ticket-triage", "gpt-5-mini", 1500, 1024, 420, 256, 512, "req-8812")


def test_every_readme_block_is_run_or_says_why_not():
    blocks = readme_blocks()
    assert len(blocks) >= 8
    for block in blocks:
        assert block["skip"] or block["lang"] in ("sh", "python"), block["code"][:200]
        if block["skip"]:
            assert ":" in block["skip"], "a skipped block names the reason"


def documented_json(code: str) -> list[dict]:
    """The `# {...}` answer lines of a block, with `...` placeholders dropped (a partial answer)."""
    answers = []
    for line in re.findall(r"^# (\{.*\})$", code, re.M):
        line = re.sub(r",\s*\.\.\.", "", line).replace("...", "null")
        answers.append(json.loads(line))
    return answers


def contains(actual, documented) -> bool:
    """`documented` (a partial answer) is in `actual`: dict keys it names, list items in order."""
    if isinstance(documented, dict):
        return isinstance(actual, dict) and all(
            documented[k] is None or (k in actual and contains(actual[k], documented[k])) for k in documented)
    if isinstance(documented, list):
        return isinstance(actual, list) and all(any(contains(a, d) for a in actual) for d in documented)
    return actual == documented


@pytest.mark.django_db(transaction=True)
def test_every_readme_example_runs_as_written(live_server, tmp_path):
    from tests.factories import make_project, make_user

    prices_seed_load()  # the shipped catalogue, which a transactional test before this one may have flushed
    owner = make_user("readme-owner")
    project = make_project("README", owner=owner)
    key = api_key_issue(project=project, scopes=["ingest", "read"]).plaintext
    env = {**os.environ, "COSTWATCH_INGEST_KEY": key, "DATABASE_URL": database_url(),
           "DJANGO_SETTINGS_MODULE": "costwatch.settings", "DEBUG": "true", "SECRET_KEY": "readme-examples",
           "COSTWATCH_DATA_DIR": str(tmp_path)}
    ran = 0
    for block in readme_blocks():
        if block["skip"]:
            continue
        code = block["code"].replace("http://127.0.0.1:8000", live_server.url)
        rollups_refresh_dirty(project=project)  # what beat does every 20 s between a user's commands
        command = ["bash", "-euo", "pipefail", "-c", code] if block["lang"] == "sh" else [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, (block["code"], result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        answers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        for documented in documented_json(block["code"]):
            assert any(contains(actual, documented) for actual in answers), (documented, result.stdout)
        ran += 1
    assert ran >= 5

    # What the commands and the client did, checked in the database.
    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    assert alice.is_superuser and not bob.is_superuser and bob.has_usable_password()
    bot = Project.objects.get(slug="support-bot")
    assert (bot.timezone, Membership.objects.get(project=bot, user=alice).role) == ("Europe/Paris", "admin")
    assert Membership.objects.get(project=bot, user=bob).role == "viewer"
    sent = Event.objects.get(project=project, feature__name="my-first-feature", input_tokens=1200)
    assert (sent.model, sent.output_tokens, sent.max_output_tokens) == ("gpt-5-mini", 300, 512)
    # The curl example's call, priced from the catalogue: gpt-5-mini $0.25 in, $0.025 cached, $2.00 out per 1M.
    curl_call = Event.objects.get(project=project, event_id="4f7c1c9e-2b1a-4d8e-9a57-8f1c2d3e4f50")
    expected = (Decimal(1500 - 1024) * Decimal("0.25") + 1024 * Decimal("0.025") + 420 * Decimal("2.00")) / 10**6
    assert curl_call.cost_usd == expected

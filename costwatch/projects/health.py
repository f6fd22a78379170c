"""`/healthz`: the database and the broker, checked with short time-outs."""

from django.conf import settings
from django.db import connection
from kombu import Connection


def _database_status():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any failure to reach PostgreSQL is "down", with its reason
        return f"error: {exc.__class__.__name__}"


def _broker_status():
    try:
        transport_options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        with Connection(settings.CELERY_BROKER_URL, transport_options=transport_options,
                        connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # the broker being down degrades alerts, not ingest
        return f"error: {exc.__class__.__name__}"


def health_report():
    database = _database_status()
    broker = _broker_status()
    status = "ok" if database == "ok" and broker == "ok" else ("degraded" if database == "ok" else "down")
    return {"status": status, "database": database, "broker": broker}

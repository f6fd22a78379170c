import logging

from celery import shared_task
from django.db import connection

logger = logging.getLogger(__name__)


@shared_task(name="costwatch.projects.tasks.heartbeat")
def heartbeat():
    """Beat -> broker -> worker -> database round-trip, logged so a run shows it is alive. Its result
    (the database's clock) lets a caller wait for one round-trip through the broker and back."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        db_now = cursor.fetchone()[0]
    logger.info("heartbeat: worker alive, database time %s", db_now.isoformat())
    return db_now.isoformat()

import logging

from celery import shared_task
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="costwatch.projects.tasks.heartbeat", ignore_result=True)
def heartbeat():
    """Beat -> broker -> worker -> database round-trip, logged so a run shows it is alive."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        db_now = cursor.fetchone()[0]
    logger.info("heartbeat: worker alive, database time %s", db_now.isoformat())
    return db_now.isoformat()


@shared_task(name="costwatch.projects.tasks.ping")
def ping(token: str):
    """Echo a token with the worker's clock: used by tests to prove a real worker ran it."""
    return {"token": token, "at": timezone.now().isoformat()}

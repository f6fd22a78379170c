"""Thin Celery tasks: beat fans the refresh out per project; each task is idempotent."""

import logging
import time

from celery import shared_task
from django.conf import settings

from costwatch.projects.models import Project

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="costwatch.metrics.tasks.refresh_dirty_rollups", ignore_result=True)
def refresh_dirty_rollups():
    """Enqueue one refresh per project with dirty hours; mark the others as up to date."""
    expires = settings.ROLLUP_REFRESH_SECONDS * 1.5
    for project_id in services.dirty_project_ids():
        refresh_project_rollups.apply_async(args=[project_id], expires=expires)
    services.rollup_state_touch_clean()


@shared_task(name="costwatch.metrics.tasks.refresh_project_rollups", ignore_result=True, acks_late=True)
def refresh_project_rollups(project_id: int):
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    started = time.perf_counter()
    result = services.rollups_refresh_dirty(project=project)
    # The soak reads this line: refresh cost per 1,000 new events over time.
    logger.info("refresh: project %s: %d events added, %d hours rebuilt in %.3f s", project.slug,
                result.events_added, result.hours_rebuilt, time.perf_counter() - started)
    return result.hours_rebuilt

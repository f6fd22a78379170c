"""Thin Celery tasks: beat fans the refresh out per project; each task is idempotent."""

from celery import shared_task
from django.conf import settings

from costwatch.projects.models import Project

from . import services


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
    return services.refresh_dirty_rollups(project=project)

"""Thin Celery tasks over budgets.services. Beat fans out one small idempotent task per project."""

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from costwatch.projects.models import Project

from . import services
from .models import Channel

logger = logging.getLogger(__name__)


@shared_task(name="budgets.tasks.evaluate_all_projects", ignore_result=True)
def evaluate_all_projects():
    """One evaluate_project task per project, expiring ~1.5 periods later so a backlog never piles up."""
    expires = settings.RULES_INTERVAL_SECONDS * 1.5
    project_ids = list(Project.objects.values_list("id", flat=True))
    for project_id in project_ids:
        evaluate_project.apply_async(args=[project_id], expires=expires)
    return len(project_ids)


@shared_task(name="budgets.tasks.evaluate_project", ignore_result=True, acks_late=True)
def evaluate_project(project_id: int):
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    evaluations = services.rules_evaluate(project=project)
    fired = [e for e in evaluations if e.verdict.fired]
    logger.info("rules: project %s evaluated %d verdicts, %d firing", project.slug, len(evaluations), len(fired))
    if fired:
        # New notices are due now: sweep right after this commit instead of waiting for the beat.
        transaction.on_commit(lambda: send_due_deliveries.apply_async(expires=settings.DELIVERY_SWEEP_SECONDS * 1.5))
    return len(fired)


@shared_task(name="budgets.tasks.send_due_deliveries", ignore_result=True)
def send_due_deliveries():
    """Claim due rows and send each in its own task, so a slow or dead channel never delays another
    (a lost task is harmless: the claim is a lease and the row comes due again)."""
    claimed = services.deliveries_claim_due()
    for delivery_id, lease_end in claimed:
        # Expire well inside the lease: a send that starts late must still finish before the
        # lease ends and the next sweep could claim (and send) the same row again. The lease
        # end goes along as the claim's token, checked again before sending.
        expires = settings.DELIVERY_LEASE_SECONDS - 3 * settings.DELIVERY_TIMEOUT_SECONDS
        send_delivery.apply_async(args=[delivery_id, lease_end.isoformat()], expires=expires)
    return len(claimed)


@shared_task(name="budgets.tasks.send_delivery", ignore_result=True)
def send_delivery(delivery_id: int, lease_end: str):
    lease = dt.datetime.fromisoformat(lease_end)
    sent = services.delivery_attempt(delivery_id=delivery_id, lease_end=lease, now=timezone.now())
    logger.info("delivery %s %s", delivery_id, "sent" if sent else "failed")
    return sent


@shared_task(name="budgets.tasks.send_channel_test", ignore_result=True)
def send_channel_test(channel_id: int):
    channel = Channel.objects.select_related("project").filter(pk=channel_id).first()
    if channel is None:
        return None
    error = services.channel_test(channel=channel)
    logger.info("channel %s test %s", channel_id, f"failed: {error}" if error else "sent")
    return error


@shared_task(name="budgets.tasks.send_daily_digests", ignore_result=True)
def send_daily_digests():
    return services.digests_send_due()

"""Deliveries: claim due rows under a lease, send each through its channel's transport, retry
with backoff; and the channels' Test button.
"""

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from ingest.models import Feature

from ..models import Alert, Channel, Delivery
from ..transports import TRANSPORTS, OutgoingMessage, TransportError

logger = logging.getLogger(__name__)


def delivery_lease() -> dt.timedelta:
    """How long a claim holds a delivery: a worker that dies mid-send leaves the row due again after this."""
    return dt.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)


def backoff_seconds(attempts: int) -> int:
    """Delay after the `attempts`-th failed attempt: the configured steps, then hourly."""
    steps = settings.DELIVERY_BACKOFF_SECONDS  # integers: settings parse the environment
    return steps[attempts - 1] if attempts <= len(steps) else 3600


def outgoing_message(delivery: Delivery) -> OutgoingMessage:
    notice = delivery.notice
    alert = notice.alert
    payload = alert.as_dict()
    payload.update(numbers=notice.numbers, message=notice.message)
    return OutgoingMessage(type=notice.type, alert=payload, project_name=alert.project.name, numbers=notice.numbers,
                           delivery_id=str(delivery.pk))


def deliveries_claim_due(*, now=None, limit: int = 200) -> list[tuple[int, dt.datetime]]:
    """Claim due deliveries, each by a conditional UPDATE that also leases it (delivery_lease()):
    two sweepers never send one row twice, and a row whose sender died becomes due again.
    Returns (delivery id, lease end): the lease end is the claim's token."""
    now = now or timezone.now()
    due = (Delivery.objects.filter(status=Delivery.PENDING, next_attempt_at__lte=now)
           .order_by("next_attempt_at", "id").values_list("id", "next_attempt_at")[:limit])
    claimed = []
    lease_end = now + delivery_lease()
    for delivery_id, next_attempt_at in list(due):
        if Delivery.objects.filter(pk=delivery_id, status=Delivery.PENDING, next_attempt_at=next_attempt_at).update(
                next_attempt_at=lease_end, attempts=F("attempts") + 1):
            claimed.append((delivery_id, lease_end))
    return claimed


def deliveries_send_due(*, now=None, limit: int = 200) -> int:
    """Claim and send every due delivery in this process; returns how many were sent."""
    now = now or timezone.now()
    return sum(delivery_attempt(delivery_id=delivery_id, lease_end=lease_end, now=now)
               for delivery_id, lease_end in deliveries_claim_due(now=now, limit=limit))


def delivery_attempt(*, delivery_id: int, lease_end: dt.datetime, now) -> bool:
    """Send one claimed delivery, only while this claim still holds it: a row whose lease ran
    out and was claimed again (or was settled meanwhile) is left to its new holder."""
    rows = Delivery.objects.filter(pk=delivery_id, status=Delivery.PENDING, next_attempt_at=lease_end)
    delivery = rows.select_related("channel", "notice__alert__project").first()
    if delivery is None:
        logger.info("delivery %s: claim no longer held, not sent", delivery_id)
        return False
    try:
        TRANSPORTS[delivery.channel.kind](delivery.channel).notify(outgoing_message(delivery))
    except TransportError as exc:
        delivery_failed(rows, delivery=delivery, error=exc.message, permanent=exc.permanent, now=now)
        return False
    except Exception as exc:  # a bug must not stop the sweep; it is retried and shown like any failure
        logger.exception("delivery %s crashed", delivery_id)
        delivery_failed(rows, delivery=delivery, error=f"internal error: {exc!r}", permanent=False, now=now)
        return False
    rows.update(status=Delivery.SENT, sent_at=now, last_error="", next_attempt_at=None)
    return True


def delivery_failed(rows, *, delivery, error, permanent, now) -> None:
    """Record a failed attempt on `rows` (the delivery while this claim holds it)."""
    next_attempt_at = now + dt.timedelta(seconds=backoff_seconds(delivery.attempts))
    too_old = next_attempt_at - delivery.created_at > dt.timedelta(seconds=settings.DELIVERY_MAX_AGE_SECONDS)
    if permanent or too_old:
        reason = error if permanent else f"gave up after {delivery.attempts} attempts: {error}"
        rows.update(status=Delivery.FAILED, permanent=permanent, last_error=reason[:2000], next_attempt_at=None)
        logger.warning("delivery %s to channel %s failed for good: %s", delivery.pk, delivery.channel_id, reason)
    else:
        rows.update(last_error=error[:2000], next_attempt_at=next_attempt_at)


def sample_alert(*, project) -> Alert:
    """An unsaved alert that looks like a real one, for the channels' Test button."""
    feature = Feature.objects.filter(project=project).order_by("name").first()
    name = feature.name if feature else "example-feature"
    numbers = {"calls_24h": 1200, "uncapped_calls_24h": 180, "uncapped_share": 0.15, "uncapped_share_threshold": 0.05}
    now = timezone.now()
    return Alert(project=project, kind="unbounded_output", feature=feature, key=f"feature={name}",
                 scope={"feature": name}, state=Alert.OPEN, opened_at=now, last_fired_at=now, last_notified_at=now,
                 numbers=numbers, message=f"Test from costwatch: 15.0% of {name}'s calls set no output cap "
                                          f"(threshold 5.0%). This is a sample; nothing is wrong.")


def channel_test_request(*, channel, now=None) -> None:
    """The Test button: record the request; the caller queues `budgets.tasks.send_channel_test`
    (the worker sends, never the web process, which must not wait on a stranger's server) and
    the page shows the outcome once `channel_test` has recorded it."""
    Channel.objects.filter(pk=channel.pk).update(test_requested_at=now or timezone.now())


def channel_test(*, channel, now=None) -> str:
    """Send a real message built from an unsaved sample alert; returns '' or the error."""
    alert = sample_alert(project=channel.project)
    message = OutgoingMessage(type="test", alert={**alert.as_dict(), "id": None}, project_name=channel.project.name,
                              numbers=alert.numbers, delivery_id=f"test-{uuid.uuid4().hex}")
    error = ""
    try:
        TRANSPORTS[channel.kind](channel).notify(message)
    except TransportError as exc:
        error = exc.message + (" (permanent)" if exc.permanent else " (transient)")
    except Exception as exc:  # a bug must still end the page's "waiting for the worker"
        logger.exception("channel %s test crashed", channel.pk)
        error = f"internal error: {exc.__class__.__name__}"
    Channel.objects.filter(pk=channel.pk).update(last_test_at=now or timezone.now(), last_test_error=error)
    return error

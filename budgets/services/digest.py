"""The daily digest email."""

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from costwatch.metrics.selectors.recommendations import recommendations
from costwatch.projects.models import Project

from .. import selectors
from ..models import Channel, DigestSent
from ..transports import TransportError, message_id, send_email

logger = logging.getLogger(__name__)
DIGEST_SAVINGS = 3  # the top recommended moves (docs/savings.md)


def digests_send_due(*, now=None) -> int:
    """At DIGEST_LOCAL_HOUR in each project's timezone, email yesterday's digest once per day."""
    now = now or timezone.now()
    sent = 0
    for project in Project.objects.all():
        local = now.astimezone(project.tzinfo)
        # From the digest hour on (not only during it): a late or skipped hourly check still sends;
        # the (project, day) row keeps it to once a day.
        if local.hour < settings.DIGEST_LOCAL_HOUR:
            continue
        recipients = sorted({address for c in Channel.objects.filter(project=project, kind=Channel.EMAIL,
                                                                      enabled=True)
                             for address in Channel.email_addresses(c.target)})
        if not recipients:
            continue
        lease_end = digest_claim(project=project, day=local.date(), recipients=recipients, now=now)
        if lease_end is None:
            continue  # already sent today, or another worker holds it
        claim = DigestSent.objects.filter(project=project, day=local.date(), sent_at=None, lease_until=lease_end)
        numbers = selectors.digest_numbers(project=project, day=local.date() - dt.timedelta(days=1))
        context = {"project": project, "site_url": settings.SITE_URL, **numbers,
                   "open_alerts": list(selectors.open_alerts(project=project)[:20]),
                   "savings": recommendations(project=project, status="recommended", now=now)[:DIGEST_SAVINGS]}
        email = EmailMultiAlternatives(
            f"[costwatch] {project.name}: ${numbers['spend_usd']:.2f} on {numbers['day']:%a %d %b}",
            render_to_string("emails/digest.txt", context), settings.DEFAULT_FROM_EMAIL, recipients,
            connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
            # The same on a resend after a killed worker's lease ran out, so the repeat is visible.
            headers={"Message-ID": message_id(f"digest-{project.pk}-{local.date().isoformat()}")})
        email.attach_alternative(render_to_string("emails/digest.html", context), "text/html")
        try:
            send_email(email)
        except TransportError as exc:
            logger.warning("digest for %s not sent: %s", project.slug, exc.message)
            if not exc.permanent:  # let the next check try again today
                claim.delete()
            continue
        sent += claim.update(sent_at=timezone.now())
    return sent


def digest_claim(*, project, day, recipients, now) -> dt.datetime | None:
    """Claim today's digest of a project under a lease; returns the lease end (the claim's
    token) or None. A claim whose worker died before sending runs out and is taken over."""
    lease_end = now + dt.timedelta(seconds=settings.DIGEST_LEASE_SECONDS)
    try:
        with transaction.atomic():
            DigestSent.objects.create(project=project, day=day, sent_at=None, lease_until=lease_end,
                                      recipients=",".join(recipients))
        return lease_end
    except IntegrityError:
        taken = DigestSent.objects.filter(project=project, day=day, sent_at=None, lease_until__lt=now).update(
            lease_until=lease_end, recipients=",".join(recipients))
        return lease_end if taken else None

"""One Transport per channel kind, the healthchecks way: `notify(message)` or TransportError.

A transport knows how to reach one channel and how to tell a failure worth retrying
(timeouts, connection errors, 5xx, 429, SMTP 4xx) from one that will never succeed
(other 4xx, a refused address): `TransportError(message, permanent=True)`.
Message bodies come from templates (templates/emails/, templates/slack/).

Delivery is at least once: a worker killed after sending but before recording it leaves the
row to be sent again. Every message carries its delivery's stable id, the same on each
attempt, so a receiver can drop the repeat (docs/alerts.md#delivery-ids).
"""

import hashlib
import hmac
import json
import smtplib
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from . import outbound
from .models import RULE_KINDS, Channel

SIGNATURE_HEADER = "X-Costwatch-Signature"
DELIVERY_HEADERS = ("X-Costwatch-Delivery", "Idempotency-Key")  # one id, under our name and the generic one
NOTICE_TITLES = {"opened": "Alert", "reminder": "Reminder", "resolved": "Resolved", "test": "Test alert"}


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass
class OutgoingMessage:
    """What every transport sends: the notice type and the alert as the API shows it."""

    type: str  # opened | reminder | resolved | test
    alert: dict  # the API shape (budgets.api.alert_payload)
    project_name: str
    numbers: dict = field(default_factory=dict)
    delivery_id: str = ""  # the same on every attempt of one delivery; another for every other

    def delivery_headers(self) -> dict:
        return dict.fromkeys(DELIVERY_HEADERS, self.delivery_id)

    @property
    def event_type(self) -> str:
        return f"alert.{self.type}"

    def context(self) -> dict:
        return {"m": self, "alert": self.alert, "kind": self.alert["kind"], "numbers": self.numbers,
                "kind_label": dict(RULE_KINDS).get(self.alert["kind"], self.alert["kind"]),
                "title": NOTICE_TITLES[self.type], "project_name": self.project_name,
                "number_rows": [(k.replace("_", " "), _show(v)) for k, v in self.numbers.items()]}


def _show(value):
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "n/a" if value is None else str(value)


class Transport:
    def __init__(self, channel: Channel):
        self.channel = channel

    def notify(self, message: OutgoingMessage) -> None:
        raise NotImplementedError


class HttpTransport(Transport):
    def post(self, body: bytes, headers: dict) -> None:
        """Send through budgets.outbound; the error kept is the status and its standard phrase,
        never the receiver's own words (they could be anything, of any size)."""
        try:
            status = outbound.post(self.channel.target, body=body,
                                   headers={"Content-Type": "application/json", **headers})
        except outbound.OutboundError as exc:
            raise TransportError(exc.message, permanent=exc.permanent) from None
        if status < 300:
            return
        detail = f"HTTP {status} {status_phrase(status)}".strip()
        if 300 <= status < 400:
            raise TransportError(f"{detail}: redirects are not followed", permanent=True)
        transient = status >= 500 or status == 429
        raise TransportError(detail, permanent=not transient)


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def slack_escape(value) -> str:
    """Slack's mrkdwn control characters: a model named `<!channel>` must not ping anyone."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_safe_context(context: dict) -> dict:
    """Free text (project and feature names, messages naming models) escaped; the link is ours."""
    alert = dict(context["alert"])
    for key in ("message", "feature"):
        if alert.get(key):
            alert[key] = slack_escape(alert[key])
    return {**context, "alert": alert, "project_name": slack_escape(context["project_name"])}


SLACK_WEBHOOK_PREFIX = "https://hooks.slack.com/"


def slack_target_problem(target: str) -> str:
    """'' when a Slack channel may send to `target`: Slack's own webhook host, or any URL where
    WEBHOOK_ALLOW_PRIVATE_IPS allows private receivers (tests, Mattermost-style on-premise
    servers that speak Slack's webhook format)."""
    if settings.WEBHOOK_ALLOW_PRIVATE_IPS or target.startswith(SLACK_WEBHOOK_PREFIX):
        return ""
    return f"a Slack target must start with {SLACK_WEBHOOK_PREFIX}"


class SlackTransport(HttpTransport):
    """Incoming webhook with Block Kit: a header, the message, the numbers and a link."""

    def payload(self, message: OutgoingMessage) -> dict:
        context = message.context()
        text = render_to_string("slack/alert.txt", slack_safe_context(context)).strip()
        fields = [{"type": "mrkdwn", "text": f"*{slack_escape(label)}*\n{slack_escape(value)}"}
                  for label, value in context["number_rows"][:10]]
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                        "text": render_to_string("slack/header.txt", context).strip()[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        ]
        if fields:
            blocks.append({"type": "section", "fields": fields})
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in costwatch"},
             "url": message.alert["url"]}]})
        return {"text": text[:3000], "blocks": blocks}

    def notify(self, message: OutgoingMessage) -> None:
        problem = slack_target_problem(self.channel.target)
        if problem:  # saved before the rule existed, or through the Django admin
            raise TransportError(problem, permanent=True)
        self.post(json.dumps(self.payload(message)).encode(), message.delivery_headers())


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookTransport(HttpTransport):
    """`{"type": "alert.opened", "alert": {...}}`, signed with HMAC-SHA256 of "<t>." + body."""

    def notify(self, message: OutgoingMessage) -> None:
        body = json.dumps({"type": message.event_type, "alert": message.alert}, separators=(",", ":")).encode()
        headers = message.delivery_headers()
        if self.channel.secret:
            headers[SIGNATURE_HEADER] = webhook_signature(self.channel.secret, int(time.time()), body)
        self.post(body, headers)


class EmailTransport(Transport):
    """HTML + text through Django's mail, to the comma-separated addresses of the channel."""

    def notify(self, message: OutgoingMessage) -> None:
        context = message.context()
        recipients = Channel.email_addresses(self.channel.target)
        subject = " ".join(render_to_string("emails/alert_subject.txt", context).split())
        email = EmailMultiAlternatives(subject, render_to_string("emails/alert.txt", context),
                                       settings.DEFAULT_FROM_EMAIL, recipients,
                                       connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
                                       headers={"Message-ID": message_id(f"delivery-{message.delivery_id}"),
                                                DELIVERY_HEADERS[0]: message.delivery_id})
        email.attach_alternative(render_to_string("emails/alert.html", context), "text/html")
        send_email(email)


def message_id(token: str) -> str:
    """A Message-ID that a resent email repeats, so mail clients and filters see one message."""
    return f"<costwatch-{token}@{urlsplit(settings.SITE_URL).hostname or 'localhost'}>"


def send_email(email) -> None:
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as exc:
        # 4xx replies (greylisting, mailbox busy) are temporary: only all-5xx refusals are final.
        permanent = all(code >= 500 for code, _message in exc.recipients.values())
        raise TransportError(f"recipients refused: {', '.join(exc.recipients)}", permanent=permanent) from None
    except smtplib.SMTPResponseException as exc:
        permanent = 500 <= exc.smtp_code < 600
        raise TransportError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=permanent) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransportError(f"mail server unreachable: {exc}") from None


TRANSPORTS = {
    Channel.EMAIL: EmailTransport,
    Channel.SLACK: SlackTransport,
    Channel.WEBHOOK: WebhookTransport,
}

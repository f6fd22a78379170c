"""What the sender puts on and reads off the wire: JSON for event values, timestamps, Retry-After."""

from __future__ import annotations

import email.utils
import gzip as gzip_module
import http.client
import urllib.error
import urllib.request
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

from .version import __version__


def json_default(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class RetryableError(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


def post_json(url: str, body: bytes, *, api_key: str, timeout: float, gzip: bool) -> tuple[int, bytes]:
    """POST a JSON body with the key; (status, body) for any answer but 429, 5xx and lost
    connections, which raise RetryableError."""
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "User-Agent": f"costwatch-client/{__version__}",
    }
    if gzip:
        body = gzip_module.compress(body, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        payload = exc.read() if exc.fp is not None else b""
        if exc.code == 429 or exc.code >= 500:
            raise RetryableError(f"HTTP {exc.code}", retry_after_seconds(exc.headers.get("Retry-After"))) from None
        return exc.code, payload
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise RetryableError(f"connection error: {getattr(exc, 'reason', exc)}") from None

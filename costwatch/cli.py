"""Small helpers shared by the management commands of every app."""

from datetime import UTC, datetime

from django.core.management.base import CommandError


def parse_when(value: str, *, option: str) -> datetime:
    """An ISO date or datetime; UTC when it has no offset. Bad input is a CommandError naming the option."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{option}: {value!r} is not an ISO date or datetime (e.g. 2026-11-01T00:00:00Z)") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)

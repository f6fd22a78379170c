"""The error-reporting validator: one raw event (a dict parsed from JSON) into an Event row.

Built from the declaration in `ingest.event_fields`: every problem of an event is reported with
its field, code and message, and the result is a plain dict keyed by Event column names. About
10 us per event; the compiled decoder of `ingest.decoding` takes the common case first and
comes here for any event it refuses.
"""

from datetime import timedelta

from .event_fields import CROSS_FIELD_LIMITS, EVENT_FIELDS, KNOWN_FIELDS, Invalid

MAX_WARNINGS_PER_EVENT = 20
# One of an event's 20 warnings stays free for its unpriced_model warning, added after pricing.
MAX_UNKNOWN_FIELD_WARNINGS = MAX_WARNINGS_PER_EVENT - 1
# (JSON field, Event column, check, required, default when absent or null)
FIELD_CHECKS = [(field.name, field.column, field.kind.check, field.required, field.default)
                for field in EVENT_FIELDS]


class Context:
    """What every event of a batch is checked against."""

    __slots__ = ("received_at", "oldest", "max_age_days", "cap_known_default")

    def __init__(self, *, received_at, max_age_days, cap_known_default=True):
        self.received_at = received_at
        self.max_age_days = max_age_days
        self.oldest = received_at - timedelta(days=max_age_days)
        self.cap_known_default = cap_known_default


def event_error(index, event_id, field, code, message) -> dict:
    return {"index": index, "event_id": event_id, "field": field, "code": code, "message": message}


def event_validate(raw, index: int, ctx: Context):
    """-> (row or None, errors, warnings) for one raw event."""
    if type(raw) is not dict:
        return None, [event_error(index, None, None, "type", "an event must be a JSON object")], []
    event_id = raw.get("event_id") if type(raw.get("event_id")) is str else None
    row, errors = {}, []
    for field, column, check, required, default in FIELD_CHECKS:
        value = raw.get(field)
        if value is None:
            if required:
                code = "required" if field not in raw else "null"
                errors.append(event_error(index, event_id, field, code,
                                          "is required" if code == "required" else "must not be null"))
            row[column] = default
            continue
        try:
            row[column] = check(value, ctx)
        except Invalid as exc:
            errors.append(event_error(index, event_id, field, exc.code, exc.message))
    if not errors:
        errors = cross_field_errors(row, index, event_id)
    if errors:
        row = None
    else:
        row["cap_known"] = "max_output_tokens" in raw or ctx.cap_known_default
        if row["attributes"] is None:
            row["attributes"] = {}
    return row, errors, unknown_field_warnings(raw, index, event_id)


def unknown_field_warnings(raw: dict, index: int, event_id) -> list[dict]:
    """A warning per unknown field, at most MAX_UNKNOWN_FIELD_WARNINGS, then one saying how many more
    were dropped: an event with 450,000 unknown keys costs 20 small dicts, not 450,000."""
    if len(raw) <= len(KNOWN_FIELDS) and KNOWN_FIELDS.issuperset(raw):
        return []
    warnings, more = [], 0
    for field in raw:
        if field in KNOWN_FIELDS:
            continue
        if len(warnings) < MAX_UNKNOWN_FIELD_WARNINGS:
            warnings.append(event_error(index, event_id, field, "unknown_field", f"unknown field {field!r} was dropped"))
        else:
            more += 1
    if more:
        warnings.append(event_error(index, event_id, None, "too_many_warnings",
                                    f"{more} more unknown field{'s' if more > 1 else ''} were dropped"))
    return warnings


def cross_field_errors(row, index, event_id) -> list[dict]:
    errors = []
    for limit in CROSS_FIELD_LIMITS:
        if limit.exceeded(row):
            errors.append(event_error(index, event_id, limit.field_named(row), "max_value", limit.message))
    return errors

"""Validation of one raw event (a dict parsed from JSON) into an Event row (SPEC 2).

Hand-written checks, table driven: JSON types are strict (bool is not an int, "12" is not
an int), every problem of an event is reported with its field, code and message, and the
result is a plain dict keyed by Event column names. About 10 us per event.
"""

import math
import operator
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec

INT_MAX = 2**31 - 1
COST_MAX = Decimal("1e8")
COST_QUANTUM = Decimal("1e-12")
FEATURE_RE = re.compile(r"^[A-Za-z0-9._:-]+\Z")  # \Z: "$" would also accept a trailing newline
# RFC 3339 with an offset, parsed in C by msgspec (T, t or a space; Z, z or an offset). More
# than 6 fractional digits round to the microsecond, as PostgreSQL rounds them.
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
TIMESTAMP_MESSAGE = "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-26T07:00:00Z"
FUTURE_SLACK = timedelta(minutes=5)
ATTRIBUTES_MAX_KEYS = 20
ATTRIBUTES_MAX_BYTES = 2048
MAX_BATCH_EVENTS = 1000  # events per request (SPEC 2); OTLP and the rate limit use the same batch
NUL_MESSAGE = "must not contain the NUL character (\\u0000)"  # PostgreSQL text cannot hold it


class Invalid(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _string(lo, hi, *, pattern=None, pattern_message=""):
    def check(value, _ctx):
        if type(value) is not str:
            raise Invalid("type", "must be a string")
        if len(value) < lo:
            raise Invalid("min_length", "must not be empty")
        if len(value) > hi:
            raise Invalid("max_length", f"must be at most {hi} characters")
        if pattern is not None and not pattern.match(value):
            raise Invalid("invalid", pattern_message)
        if "\x00" in value:
            raise Invalid("invalid", NUL_MESSAGE)
        return value

    return check


def _choice(*choices):
    allowed = ", ".join(choices)

    def check(value, _ctx):
        if value not in choices or type(value) is not str:
            raise Invalid("invalid_choice", f"must be one of {allowed}")
        return value

    return check


def _int(minimum=0):
    def check(value, _ctx):
        if type(value) is not int:
            raise Invalid("type", "must be a JSON integer")
        if value < minimum:
            raise Invalid("min_value", f"must be >= {minimum}")
        if value > INT_MAX:
            raise Invalid("max_value", f"must be <= {INT_MAX}")
        return value

    return check


def _unit_number(value, _ctx):
    if type(value) not in (int, float):
        raise Invalid("type", "must be a number")
    if not (0 <= value <= 1) or math.isnan(value):
        raise Invalid("min_value" if value < 0 else "max_value", "must be between 0 and 1")
    return float(value)


def _timestamp(value, ctx):
    if type(value) is not str:
        raise Invalid("invalid", TIMESTAMP_MESSAGE)
    try:
        ts = msgspec.convert(value, AwareDatetime)
    except msgspec.ValidationError as exc:
        raise Invalid("invalid", TIMESTAMP_MESSAGE) from exc
    if ts > ctx.received_at + FUTURE_SLACK:
        raise Invalid("in_future", "must be at most 5 minutes in the future")
    if ts < ctx.oldest:
        raise Invalid("too_old", f"must be at most {ctx.max_age_days} days old")
    return ts


def _cost(value, _ctx):
    if type(value) is str:
        try:
            amount = Decimal(value.strip())
        except InvalidOperation as exc:
            raise Invalid("invalid", "must be a decimal string or a number, e.g. \"0.0123\"") from exc
    elif type(value) in (int, float):
        amount = Decimal(repr(value)) if type(value) is float else Decimal(value)
    else:
        raise Invalid("type", "must be a decimal string or a number")
    if not amount.is_finite():
        raise Invalid("invalid", "must be a finite decimal")
    if amount < 0:
        raise Invalid("min_value", "must be >= 0")
    if amount >= COST_MAX:
        raise Invalid("max_value", "must be < 100000000")
    return amount.quantize(COST_QUANTUM)


def _max_output(value, _ctx):
    if value is None:
        return None
    return _int(1)(value, _ctx)


def _attributes(value, _ctx):
    if type(value) is not dict:
        raise Invalid("type", "must be an object")
    if len(value) > ATTRIBUTES_MAX_KEYS:
        raise Invalid("max_length", f"must have at most {ATTRIBUTES_MAX_KEYS} keys")
    for key, item in value.items():
        if item is not None and type(item) not in (str, int, float, bool):
            raise Invalid("invalid", f"value of {key!r} must be a string, number, boolean or null")
        if "\x00" in key or (type(item) is str and "\x00" in item):
            raise Invalid("invalid", f"the key or value of {key!r} {NUL_MESSAGE}")
    if len(msgspec.json.encode(value)) > ATTRIBUTES_MAX_BYTES:
        raise Invalid("max_length", f"must be at most {ATTRIBUTES_MAX_BYTES} bytes as JSON")
    return value


# (JSON field, Event column, check, required, default when absent or null)
FIELDS = [
    ("event_id", "event_id", _string(1, 128), True, None),
    ("timestamp", "ts", _timestamp, True, None),
    ("feature", "feature", _string(1, 100, pattern=FEATURE_RE,
                                   pattern_message="may contain only letters, digits and . _ : -"), True, None),
    ("model", "model", _string(1, 200), True, None),
    ("provider", "provider", _string(1, 50), False, ""),
    ("tier", "client_tier", _choice("lite", "pro"), False, ""),
    ("input_tokens", "input_tokens", _int(), True, None),
    ("cached_input_tokens", "cached_input_tokens", _int(), False, 0),
    ("cache_write_input_tokens", "cache_write_input_tokens", _int(), False, 0),
    ("output_tokens", "output_tokens", _int(), True, None),
    ("reasoning_tokens", "reasoning_tokens", _int(), False, 0),
    ("max_output_tokens", "max_output_tokens", _max_output, False, None),
    ("service_tier", "service_tier", _choice("standard", "batch", "flex", "priority"), False, "standard"),
    ("finish_reason", "finish_reason", _string(1, 50), False, ""),
    ("latency_ms", "latency_ms", _int(), False, None),
    ("ttft_ms", "ttft_ms", _int(), False, None),
    ("status", "status", _choice("ok", "error"), False, "ok"),
    ("environment", "environment", _string(1, 50), False, "production"),
    ("role", "role", _choice("primary", "triage", "escalation", "shadow"), False, "primary"),
    ("request_id", "request_id", _string(1, 128), False, ""),
    ("parent_event_id", "parent_event_id", _string(1, 128), False, ""),
    ("route_reason", "route_reason", _string(1, 50), False, ""),
    ("confidence", "confidence", _unit_number, False, None),
    ("quality", "quality", _unit_number, False, None),
    ("cost_usd", "client_cost_usd", _cost, False, None),
    ("attributes", "attributes", _attributes, False, None),
]
KNOWN_FIELDS = frozenset(field for field, *_ in FIELDS)


class Context:
    """What every event of a batch is checked against."""

    __slots__ = ("received_at", "oldest", "max_age_days", "cap_known_default")

    def __init__(self, *, received_at, max_age_days, cap_known_default=True):
        self.received_at = received_at
        self.max_age_days = max_age_days
        self.oldest = received_at - timedelta(days=max_age_days)
        self.cap_known_default = cap_known_default


def _error(index, event_id, field, code, message):
    return {"index": index, "event_id": event_id, "field": field, "code": code, "message": message}


MAX_WARNINGS_PER_EVENT = 20


def unknown_field_warnings(raw: dict, index: int, event_id) -> list[dict]:
    """A warning per unknown field, at most MAX_WARNINGS_PER_EVENT, then one saying how many more
    were dropped: an event with 450,000 unknown keys costs 21 small dicts, not 450,000."""
    warnings, more = [], 0
    for field in raw:
        if field in KNOWN_FIELDS:
            continue
        if len(warnings) < MAX_WARNINGS_PER_EVENT:
            warnings.append(_error(index, event_id, field, "unknown_field", f"unknown field {field!r} was dropped"))
        else:
            more += 1
    if more:
        warnings.append(_error(index, event_id, None, "too_many_warnings",
                               f"{more} more unknown field{'s' if more > 1 else ''} were dropped"))
    return warnings


def event_validate(raw, index: int, ctx: Context):
    """-> (row or None, errors, warnings) for one raw event."""
    if type(raw) is not dict:
        return None, [_error(index, None, None, "type", "an event must be a JSON object")], []
    event_id = raw.get("event_id") if type(raw.get("event_id")) is str else None
    row, errors = {}, []
    for field, column, check, required, default in FIELDS:
        value = raw.get(field)
        if value is None and field != "max_output_tokens":
            if required:
                code = "required" if field not in raw else "null"
                errors.append(_error(index, event_id, field, code,
                                     "is required" if code == "required" else "must not be null"))
            row[column] = default
            continue
        try:
            row[column] = check(value, ctx)
        except Invalid as exc:
            errors.append(_error(index, event_id, field, exc.code, exc.message))
    if not errors:
        errors = _cross_field_errors(row, index, event_id)
    if errors:
        row = None
    else:
        row["cap_known"] = "max_output_tokens" in raw or ctx.cap_known_default
        if row["attributes"] is None:
            row["attributes"] = {}
    return row, errors, unknown_field_warnings(raw, index, event_id)


def _cross_field_errors(row, index, event_id):
    errors = []
    if row["cached_input_tokens"] + row["cache_write_input_tokens"] > row["input_tokens"]:
        field = "cache_write_input_tokens" if row["cache_write_input_tokens"] else "cached_input_tokens"
        errors.append(_error(index, event_id, field, "max_value",
                             "cached_input_tokens + cache_write_input_tokens must be <= input_tokens"))
    if row["reasoning_tokens"] > row["output_tokens"]:
        errors.append(_error(index, event_id, "reasoning_tokens", "max_value", "must be <= output_tokens"))
    return errors


# --- Fast path -----------------------------------------------------------------------------
# The same field rules as FIELDS, compiled by msgspec (C). A valid event converts in a few
# microseconds; any event it refuses goes through `event_validate` above, which names every
# problem. The window, cross-field and size checks are shared, so the two paths cannot
# disagree on them; the API tests run every field rule through this path.

Count = Annotated[int, msgspec.Meta(ge=0, le=INT_MAX)]
Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]


def _text(hi, **extra):
    return Annotated[str, msgspec.Meta(min_length=1, max_length=hi, **extra)]


class FastEvent(msgspec.Struct, kw_only=True):
    event_id: _text(128)
    timestamp: str
    feature: _text(100, pattern=FEATURE_RE.pattern)
    model: _text(200)
    provider: _text(50) | None = None
    tier: Literal["lite", "pro"] | None = None
    input_tokens: Count
    cached_input_tokens: Count | None = None
    cache_write_input_tokens: Count | None = None
    output_tokens: Count
    reasoning_tokens: Count | None = None
    max_output_tokens: Annotated[int, msgspec.Meta(ge=1, le=INT_MAX)] | None = None
    service_tier: Literal["standard", "batch", "flex", "priority"] | None = None
    finish_reason: _text(50) | None = None
    latency_ms: Count | None = None
    ttft_ms: Count | None = None
    status: Literal["ok", "error"] | None = None
    environment: _text(50) | None = None
    role: Literal["primary", "triage", "escalation", "shadow"] | None = None
    request_id: _text(128) | None = None
    parent_event_id: _text(128) | None = None
    route_reason: _text(50) | None = None
    confidence: Unit | None = None
    quality: Unit | None = None
    cost_usd: str | int | float | None = None
    attributes: Annotated[dict[str, str | int | float | bool | None],
                          msgspec.Meta(max_length=ATTRIBUTES_MAX_KEYS)] | None = None


_convert = msgspec.convert
json_text = msgspec.json.Encoder().encode  # bytes; also the COPY text of JSON columns


class StrictEvent(FastEvent, forbid_unknown_fields=True, gc=False):
    """For decoding a whole JSON body at once: an unknown field sends the batch to the dict path,
    which reports it as a warning. Not tracked by the garbage collector (it holds no cycles):
    a batch would otherwise add 1000 objects to every collection it triggers. The feature
    pattern is checked once per distinct name by `columns_from_structs` (a regex call per
    event was 45% of the decode)."""

    feature: _text(100)


class StrictBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[StrictEvent], msgspec.Meta(min_length=1, max_length=MAX_BATCH_EVENTS)]


_strict_batch_decoder = msgspec.json.Decoder(StrictBatch)


def batch_decode_strict(body: bytes) -> list | None:
    """The events of a body that is a well-formed batch of valid-typed events, or None (any doubt)."""
    try:
        return _strict_batch_decoder.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


# (FastEvent attribute, Event column, default when null or absent) for `columns_from_structs`:
# the FIELDS table's, but for the three fields it converts itself.
_STRUCT_EXTRAS = ("timestamp", "cost_usd", "attributes")
_STRUCT_COLUMNS = [(field, column, default) for field, column, _check, _required, default in FIELDS
                   if field not in _STRUCT_EXTRAS]
_struct_values = operator.attrgetter(*(name for name, _column, _default in _STRUCT_COLUMNS))
_struct_extras = operator.attrgetter(*_STRUCT_EXTRAS)


def columns_from_structs(events, ctx: Context) -> tuple[dict[str, list], dict[str, list]] | None:
    """(columns, COPY texts) of events decoded by `batch_decode_strict`, keyed by Event column
    names; None when one of them needs the full error report of the dict path (a timestamp
    out of window, a cross-field rule, ...). The texts are `ts` and `attributes` as COPY reads them."""
    transposed = list(zip(*map(_struct_values, events), strict=True))
    columns = {}
    for (_name, column, default), values in zip(_STRUCT_COLUMNS, transposed, strict=True):
        values = list(values)
        if default is not None and None in values:
            values = [default if value is None else value for value in values]
        columns[column] = values
    if not all(map(FEATURE_RE.match, set(columns["feature"]))):
        return None
    timestamps, costs, attributes = zip(*map(_struct_extras, events), strict=True)
    try:
        columns["ts"], ts_texts = _timestamps(timestamps, ctx)
        columns["client_cost_usd"] = [None if cost is None else _cost(cost, ctx) for cost in costs]
    except Invalid:
        return None
    attribute_json = [json_text(value) if value else b"{}" for value in attributes]
    if max(map(len, attribute_json)) > ATTRIBUTES_MAX_BYTES:
        return None
    attribute_texts = list(map(bytes.decode, attribute_json))
    cached = map(operator.add, columns["cached_input_tokens"], columns["cache_write_input_tokens"])
    if any(map(operator.gt, cached, columns["input_tokens"])):
        return None
    if any(map(operator.gt, columns["reasoning_tokens"], columns["output_tokens"])):
        return None
    columns["cap_known"] = [True] * len(events)
    return columns, {"ts": ts_texts, "attributes": attribute_texts}


def _timestamps(values, ctx: Context) -> tuple[list, list[str]]:
    """The parsed timestamps and their COPY texts: as sent, unless a text has more than 6
    fractional digits (then the rounded value, so the stored time is exactly the parsed one)."""
    try:
        parsed = _parse_timestamps(values)
    except msgspec.ValidationError as exc:
        raise Invalid("invalid", "") from exc
    if min(parsed) < ctx.oldest or max(parsed) > ctx.received_at + FUTURE_SLACK:
        raise Invalid("window", "")
    texts = list(values)
    if any(map(_not_copyable, texts)):
        texts = [text if _not_copyable(text) is None else utc_text(ts) for text, ts in zip(texts, parsed, strict=True)]
    return parsed, texts


def _parse_timestamps(values) -> list[datetime]:
    return msgspec.convert(values, list[AwareDatetime])


# Sent texts PostgreSQL would read otherwise: more than 6 fractional digits (it rounds them
# itself, but Python's value is the one the dirty hours come from) or an offset beyond
# +-15:59, which RFC 3339 allows and PostgreSQL refuses. These are written as UTC.
_not_copyable = re.compile(r"\.\d{7}|[+-](?:1[6-9]|2\d):?\d\d$").search


def utc_text(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def _struct_row(event, ctx) -> dict:
    attributes = event.attributes or {}
    if attributes and len(msgspec.json.encode(attributes)) > ATTRIBUTES_MAX_BYTES:
        raise Invalid("max_length", "")
    return {
        "event_id": event.event_id, "ts": _timestamp(event.timestamp, ctx), "feature": event.feature,
        "model": event.model, "provider": event.provider or "", "client_tier": event.tier or "",
        "input_tokens": event.input_tokens, "cached_input_tokens": event.cached_input_tokens or 0,
        "cache_write_input_tokens": event.cache_write_input_tokens or 0, "output_tokens": event.output_tokens,
        "reasoning_tokens": event.reasoning_tokens or 0, "max_output_tokens": event.max_output_tokens,
        "service_tier": event.service_tier or "standard", "finish_reason": event.finish_reason or "",
        "latency_ms": event.latency_ms, "ttft_ms": event.ttft_ms, "status": event.status or "ok",
        "environment": event.environment or "production", "role": event.role or "primary",
        "request_id": event.request_id or "", "parent_event_id": event.parent_event_id or "",
        "route_reason": event.route_reason or "", "confidence": event.confidence, "quality": event.quality,
        "client_cost_usd": None if event.cost_usd is None else _cost(event.cost_usd, ctx),
        "attributes": attributes, "cap_known": True,
    }


def _holds_nul(raw: dict) -> bool:
    attributes = raw.get("attributes")
    strings = [value for value in raw.values() if type(value) is str]
    if type(attributes) is dict:
        strings.extend(attributes)
        strings.extend(value for value in attributes.values() if type(value) is str)
    return "\x00" in "".join(strings)


def event_validate_fast(raw, index: int, ctx: Context):
    """Like `event_validate`, but through the compiled schema first; falls back on any doubt."""
    if type(raw) is not dict or _holds_nul(raw):
        return event_validate(raw, index, ctx)
    try:
        event = _convert(raw, FastEvent, strict=True)
        row = _struct_row(event, ctx)
    except (msgspec.ValidationError, Invalid):
        return event_validate(raw, index, ctx)
    row["cap_known"] = "max_output_tokens" in raw or ctx.cap_known_default
    event_id = event.event_id
    errors = _cross_field_errors(row, index, event_id)
    if errors:
        return None, errors, []
    warnings = []
    if len(raw) > len(KNOWN_FIELDS) or not KNOWN_FIELDS.issuperset(raw):
        warnings = unknown_field_warnings(raw, index, event_id)
    return row, [], warnings

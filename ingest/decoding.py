"""The fast path: the declared fields compiled by msgspec (C) into structs at import time.

A valid event converts in a few microseconds; any event the structs refuse goes through the
error-reporting `event_validate`, which names every problem. The window, cross-field and size
checks are the declaration's own, so the two paths cannot disagree on them.
"""

import functools
import operator
import re
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from .event_fields import (
    ATTRIBUTES_MAX_BYTES,
    CROSS_FIELD_LIMITS,
    EVENT_FIELDS,
    FUTURE_SLACK,
    MAX_BATCH_EVENTS,
    Attributes,
    AwareDatetime,
    Cost,
    Invalid,
    Text,
    Timestamp,
    json_text,
)
from .validation import Context, cross_field_errors, event_validate, unknown_field_warnings


def _struct_fields(*, strict: bool) -> list[tuple]:
    fields = []
    for field in EVENT_FIELDS:
        kind_type = field.kind.struct_type(strict=strict)
        fields.append((field.name, kind_type) if field.required else (field.name, kind_type | None, None))
    return fields


FastEvent = msgspec.defstruct("FastEvent", _struct_fields(strict=False), kw_only=True, module=__name__)
# For decoding a whole JSON body at once: an unknown field sends the batch to the dict path, which
# reports it as a warning. Not tracked by the garbage collector (it holds no cycles): a batch would
# otherwise add 1000 objects to every collection it triggers. Patterns are checked once per
# distinct value by `columns_from_structs` (a regex call per event was 45% of the decode).
StrictEvent = msgspec.defstruct("StrictEvent", _struct_fields(strict=True), kw_only=True, module=__name__,
                                forbid_unknown_fields=True, gc=False)


class StrictBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[StrictEvent], msgspec.Meta(min_length=1, max_length=MAX_BATCH_EVENTS)]


_strict_batch_decoder = msgspec.json.Decoder(StrictBatch)


def batch_decode_strict(body: bytes) -> list | None:
    """The events of a body that is a well-formed batch of valid-typed events, or None (any doubt)."""
    try:
        return _strict_batch_decoder.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


# Fields whose decoded value is the stored one, and the three kinds converted here: the timestamp
# (a batch at a time, with the window), the attributes (their JSON size) and costs (to Decimal).
_PLAIN = [field for field in EVENT_FIELDS if not isinstance(field.kind, Timestamp | Attributes | Cost)]
(_TIMESTAMP,) = [field for field in EVENT_FIELDS if isinstance(field.kind, Timestamp)]
(_ATTRIBUTES,) = [field for field in EVENT_FIELDS if isinstance(field.kind, Attributes)]
_COSTS = [field for field in EVENT_FIELDS if isinstance(field.kind, Cost)]
_PATTERNED = [field for field in EVENT_FIELDS if isinstance(field.kind, Text) and field.kind.pattern is not None]
_plain_values = operator.attrgetter(*(field.name for field in _PLAIN))
_converted_values = operator.attrgetter(_TIMESTAMP.name, _ATTRIBUTES.name, *(field.name for field in _COSTS))


def columns_from_structs(events, ctx: Context) -> tuple[dict[str, list], dict[str, list]] | None:
    """(columns, COPY texts) of events decoded by `batch_decode_strict`, keyed by Event column
    names; None when one of them needs the full error report of the dict path (a timestamp
    out of window, a cross-field rule, ...). The texts are the timestamp and attributes columns
    as COPY reads them."""
    transposed = list(zip(*map(_plain_values, events), strict=True))
    columns = {}
    for field, values in zip(_PLAIN, transposed, strict=True):
        values = list(values)
        if field.default is not None and None in values:
            values = [field.default if value is None else value for value in values]
        columns[field.column] = values
    for field in _PATTERNED:
        if not all(map(field.kind.pattern.match, set(columns[field.column]) - {field.default})):
            return None
    timestamps, attributes, *costs = zip(*map(_converted_values, events), strict=True)
    try:
        columns[_TIMESTAMP.column], ts_texts = _timestamps(timestamps, ctx)
        for field, values in zip(_COSTS, costs, strict=True):
            columns[field.column] = [None if value is None else field.kind.check(value, ctx) for value in values]
    except Invalid:
        return None
    attribute_json = [json_text(value) if value else b"{}" for value in attributes]
    if max(map(len, attribute_json)) > ATTRIBUTES_MAX_BYTES:
        return None
    if any(_limit_broken(limit, columns) for limit in CROSS_FIELD_LIMITS):
        return None
    columns["cap_known"] = [True] * len(events)
    return columns, {_TIMESTAMP.column: ts_texts, _ATTRIBUTES.column: list(map(bytes.decode, attribute_json))}


def _limit_broken(limit, columns) -> bool:
    """Whether any event breaks a cross-field limit, in C-level maps over the columns."""
    first, *rest = (columns[part] for part in limit.parts)
    sums = functools.reduce(functools.partial(map, operator.add), rest, first)
    return any(map(operator.gt, sums, columns[limit.whole]))


def _timestamps(values, ctx: Context) -> tuple[list, list[str]]:
    """The parsed timestamps and their COPY texts: as sent, unless a text has more than 6
    fractional digits (then the rounded value, so the stored time is exactly the parsed one)."""
    try:
        parsed = msgspec.convert(values, list[AwareDatetime])
    except msgspec.ValidationError as exc:
        raise Invalid("invalid", "") from exc
    if min(parsed) < ctx.oldest or max(parsed) > ctx.received_at + FUTURE_SLACK:
        raise Invalid("window", "")
    texts = list(values)
    if any(map(_not_copyable, texts)):
        texts = [text if _not_copyable(text) is None else utc_text(ts) for text, ts in zip(texts, parsed, strict=True)]
    return parsed, texts


# Sent texts PostgreSQL would read otherwise: more than 6 fractional digits (it rounds them
# itself, but Python's value is the one the dirty hours come from) or an offset beyond
# +-15:59, which RFC 3339 allows and PostgreSQL refuses. These are written as UTC.
_not_copyable = re.compile(r"\.\d{7}|[+-](?:1[6-9]|2\d):?\d\d$").search


def utc_text(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def _row_function():
    """(event struct, ctx) -> row, generated from the declaration as one dict display: as fast as
    the hand-written function it replaces (a loop over the fields took twice as long per event).
    Raises Invalid when the attributes are too large or a converted value is refused."""
    namespace = {"Invalid": Invalid, "json_text": json_text, "ATTRIBUTES_MAX_BYTES": ATTRIBUTES_MAX_BYTES}
    items = []
    for number, field in enumerate(EVENT_FIELDS):
        assert field.name.isidentifier(), field.name
        if field is _ATTRIBUTES:
            items.append(f"{field.column!r}: attributes")
            continue
        converted = "value"
        if field not in _PLAIN:  # a timestamp or a cost: converted by the kind's own check
            namespace[f"check_{number}"] = field.kind.check
            converted = f"check_{number}(value, ctx)"
        if converted == "value" and field.default is None:
            items.append(f"{field.column!r}: event.{field.name}")
        else:
            items.append(f"{field.column!r}: ({field.default!r} if (value := event.{field.name}) is None "
                         f"else {converted})")
    source = (f"def struct_row(event, ctx):\n"
              f"    attributes = event.{_ATTRIBUTES.name} or {{}}\n"
              f"    if attributes and len(json_text(attributes)) > ATTRIBUTES_MAX_BYTES:\n"
              f"        raise Invalid('max_length', '')\n"
              f"    return {{{', '.join(items)}}}\n")
    exec(source, namespace)
    return namespace["struct_row"]


_struct_row = _row_function()


def _holds_nul(raw: dict) -> bool:
    attributes = raw.get(_ATTRIBUTES.name)
    strings = [value for value in raw.values() if type(value) is str]
    if type(attributes) is dict:
        strings.extend(attributes)
        strings.extend(value for value in attributes.values() if type(value) is str)
    return "\x00" in "".join(strings)


def event_validate_fast(raw, index: int, ctx: Context):
    """Like `event_validate`, but through the compiled struct first; falls back on any doubt."""
    if type(raw) is not dict or _holds_nul(raw):
        return event_validate(raw, index, ctx)
    try:
        event = msgspec.convert(raw, FastEvent, strict=True)
        row = _struct_row(event, ctx)
    except (msgspec.ValidationError, Invalid):
        return event_validate(raw, index, ctx)
    row["cap_known"] = "max_output_tokens" in raw or ctx.cap_known_default
    errors = cross_field_errors(row, index, event.event_id)
    if errors:
        return None, errors, []
    return row, [], unknown_field_warnings(raw, index, event.event_id)

"""The fields of a usage event, declared once (docs/ingest.md#the-event-fields).

`EVENT_FIELDS` lists every field of the events API: its name, the Event column that stores it,
whether it is required, what is stored when it is absent or null, and its kind (the type with
its bounds and enum). Each kind knows how to check a value and how to describe itself to the
compiled decoder and to the OpenAPI schema, so every consumer is built from this table at
import time:
- the error-reporting validator, `ingest.validation.event_validate` (`kind.check`);
- the fast decoder's msgspec structs, `ingest.decoding` (`kind.struct_type`);
- the COPY writer's defaults, `ingest.copytext.ROW_DEFAULTS` (`field.default`);
- the OpenAPI component, `ingest.schema.EventSerializer` (`kind.serializer_field`).
Enums are the Event model's choices. `tests/ingest/test_event_fields.py` walks every field
through all four with a valid and an invalid value.
"""

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec
from rest_framework import serializers

from .models import MONEY, PRICE_TIERS, ROLES, SERVICE_TIERS, STATUSES

INT_MAX = 2**31 - 1
COST_MAX = Decimal("1e8")
COST_QUANTUM = Decimal("1e-12")
FUTURE_SLACK = timedelta(minutes=5)
ATTRIBUTES_MAX_KEYS = 20
ATTRIBUTES_MAX_BYTES = 2048
MAX_BATCH_EVENTS = 1000  # events per request; OTLP and the rate limit use the same batch
NUL_MESSAGE = "must not contain the NUL character (\\u0000)"  # PostgreSQL text cannot hold it
TIMESTAMP_MESSAGE = "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-26T07:00:00Z"
# RFC 3339 with an offset, parsed in C by msgspec (T, t or a space; Z, z or an offset). More
# than 6 fractional digits round to the microsecond, as PostgreSQL rounds them.
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
json_text = msgspec.json.Encoder().encode  # bytes; also the COPY text of JSON columns


class Invalid(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _values(choices) -> tuple[str, ...]:
    return tuple(value for value, _label in choices)


# --- Kinds: a type with its bounds ------------------------------------------------------------
# check(value, ctx) -> the stored value or raises Invalid; JSON types are strict (bool is not an
# int, "12" is not an int). struct_type(): the msgspec type of the compiled decoder (strict=True:
# the whole-body decoder, which leaves a pattern to be checked once per distinct value).

@dataclass(frozen=True)
class Text:
    max_length: int
    charset: str = ""  # a regex character class body, e.g. "A-Za-z0-9"; "" = any text
    charset_message: str = ""
    pattern: re.Pattern | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.charset:  # \Z: "$" would also accept a trailing newline
            object.__setattr__(self, "pattern", re.compile(rf"^[{self.charset}]+\Z"))

    def check(self, value, _ctx):
        if type(value) is not str:
            raise Invalid("type", "must be a string")
        if not value:
            raise Invalid("min_length", "must not be empty")
        if len(value) > self.max_length:
            raise Invalid("max_length", f"must be at most {self.max_length} characters")
        if self.pattern is not None and not self.pattern.match(value):
            raise Invalid("invalid", self.charset_message)
        if "\x00" in value:
            raise Invalid("invalid", NUL_MESSAGE)
        return value

    def struct_type(self, *, strict=False):
        pattern = {} if strict or self.pattern is None else {"pattern": self.pattern.pattern}
        return Annotated[str, msgspec.Meta(min_length=1, max_length=self.max_length, **pattern)]

    def serializer_field(self, **options):
        if self.pattern is not None:
            return serializers.RegexField(rf"^[{self.charset}]{{1,{self.max_length}}}\Z", **options)
        return serializers.CharField(min_length=1, max_length=self.max_length, **options)


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]

    def check(self, value, _ctx):
        if value not in self.choices or type(value) is not str:
            raise Invalid("invalid_choice", f"must be one of {', '.join(self.choices)}")
        return value

    def struct_type(self, *, strict=False):
        return Literal[self.choices]

    def serializer_field(self, **options):
        return serializers.ChoiceField(list(self.choices), **options)


@dataclass(frozen=True)
class Count:
    minimum: int = 0

    def check(self, value, _ctx):
        if type(value) is not int:
            raise Invalid("type", "must be a JSON integer")
        if value < self.minimum:
            raise Invalid("min_value", f"must be >= {self.minimum}")
        if value > INT_MAX:
            raise Invalid("max_value", f"must be <= {INT_MAX}")
        return value

    def struct_type(self, *, strict=False):
        return Annotated[int, msgspec.Meta(ge=self.minimum, le=INT_MAX)]

    def serializer_field(self, **options):
        return serializers.IntegerField(min_value=self.minimum, max_value=INT_MAX, **options)


@dataclass(frozen=True)
class Unit:
    """A number from 0 to 1."""

    def check(self, value, _ctx):
        if type(value) not in (int, float):
            raise Invalid("type", "must be a number")
        if not (0 <= value <= 1) or math.isnan(value):
            raise Invalid("min_value" if value < 0 else "max_value", "must be between 0 and 1")
        return float(value)

    def struct_type(self, *, strict=False):
        return Annotated[float, msgspec.Meta(ge=0, le=1)]

    def serializer_field(self, **options):
        return serializers.FloatField(min_value=0, max_value=1, **options)


@dataclass(frozen=True)
class Timestamp:
    """RFC 3339 with an offset, inside the batch's window (ctx)."""

    def check(self, value, ctx):
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

    def struct_type(self, *, strict=False):
        return str  # parsed a batch at a time, with the window check

    def serializer_field(self, **options):
        return serializers.DateTimeField(**options)


@dataclass(frozen=True)
class Cost:
    """US dollars as a decimal string or a JSON number; stored exactly, 12 decimals."""

    def check(self, value, _ctx):
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

    def struct_type(self, *, strict=False):
        return str | int | float

    def serializer_field(self, **options):
        return serializers.DecimalField(min_value=0, **MONEY, **options)


@dataclass(frozen=True)
class Attributes:
    """A flat object of scalars, bounded in keys and JSON size."""

    def check(self, value, _ctx):
        if type(value) is not dict:
            raise Invalid("type", "must be an object")
        if len(value) > ATTRIBUTES_MAX_KEYS:
            raise Invalid("max_length", f"must have at most {ATTRIBUTES_MAX_KEYS} keys")
        for key, item in value.items():
            if item is not None and type(item) not in (str, int, float, bool):
                raise Invalid("invalid", f"value of {key!r} must be a string, number, boolean or null")
            if "\x00" in key or (type(item) is str and "\x00" in item):
                raise Invalid("invalid", f"the key or value of {key!r} {NUL_MESSAGE}")
        if len(json_text(value)) > ATTRIBUTES_MAX_BYTES:
            raise Invalid("max_length", f"must be at most {ATTRIBUTES_MAX_BYTES} bytes as JSON")
        return value

    def struct_type(self, *, strict=False):
        scalar = str | int | float | bool | None
        return Annotated[dict[str, scalar], msgspec.Meta(max_length=ATTRIBUTES_MAX_KEYS)]

    def serializer_field(self, **options):
        return serializers.DictField(**options)


@dataclass(frozen=True)
class EventField:
    name: str  # in the events API
    kind: Text | Choice | Count | Unit | Timestamp | Cost | Attributes
    required: bool = False
    default: object = None  # stored when the field is absent or null
    column: str = ""  # the Event column; "" = the name
    help_text: str = ""
    null_documented: bool = False  # OpenAPI shows null as a value of its own

    def __post_init__(self):
        if not self.column:
            object.__setattr__(self, "column", self.name)


FEATURE = Text(100, charset="A-Za-z0-9._:-", charset_message="may contain only letters, digits and . _ : -")
FEATURE_RE = FEATURE.pattern  # also what rules and budgets accept as a feature name

EVENT_FIELDS = [
    EventField("event_id", Text(128), required=True, help_text="Unique per project; repeats are duplicates."),
    EventField("timestamp", Timestamp(), required=True, column="ts",
               help_text="RFC 3339 with offset; <= 5 min in the future, <= 90 days old."),
    EventField("feature", FEATURE, required=True, help_text="The product feature that made the call."),
    EventField("model", Text(200), required=True),
    EventField("provider", Text(50), default=""),
    EventField("tier", Choice(_values(PRICE_TIERS)), default="", column="client_tier",
               help_text="Overrides the catalogue's tier."),
    EventField("input_tokens", Count(), required=True, help_text="All input tokens incl. cached reads and cache writes."),
    EventField("cached_input_tokens", Count(), default=0),
    EventField("cache_write_input_tokens", Count(), default=0),
    EventField("output_tokens", Count(), required=True, help_text="Incl. reasoning tokens."),
    EventField("reasoning_tokens", Count(), default=0),
    EventField("max_output_tokens", Count(minimum=1), null_documented=True,
               help_text="The cap the request set; null or absent = no cap."),
    EventField("service_tier", Choice(_values(SERVICE_TIERS)), default="standard"),
    EventField("finish_reason", Text(50), default=""),
    EventField("latency_ms", Count()),
    EventField("ttft_ms", Count()),
    EventField("status", Choice(_values(STATUSES)), default="ok"),
    EventField("environment", Text(50), default="production"),
    EventField("role", Choice(_values(ROLES)), default="primary"),
    EventField("request_id", Text(128), default=""),
    EventField("parent_event_id", Text(128), default=""),
    EventField("route_reason", Text(50), default=""),
    EventField("confidence", Unit()),
    EventField("quality", Unit()),
    EventField("cost_usd", Cost(), column="client_cost_usd", help_text="Used only when no price matches the model."),
    # null or absent: stored as {} (`event_validate` and the COPY text of a JSON column)
    EventField("attributes", Attributes(), help_text="<= 20 keys, scalar values, <= 2 KB as JSON."),
]
KNOWN_FIELDS = frozenset(event_field.name for event_field in EVENT_FIELDS)


@dataclass(frozen=True)
class AtMost:
    """A rule across fields: the sum of `parts` must be <= `whole`. An error names the last part
    that is not zero (the first when all are)."""

    parts: tuple[str, ...]
    whole: str
    message: str
    exceeded: object = field(init=False, compare=False, repr=False)  # row -> bool

    def __post_init__(self):
        # Generated: a call per event on the fast path, 5x faster than a loop over the parts.
        total = " + ".join(f"row[{part!r}]" for part in self.parts)
        object.__setattr__(self, "exceeded", eval(f"lambda row: {total} > row[{self.whole!r}]"))

    def field_named(self, row: dict) -> str:
        return next((part for part in reversed(self.parts) if row[part]), self.parts[0])


CROSS_FIELD_LIMITS = [
    AtMost(("cached_input_tokens", "cache_write_input_tokens"), "input_tokens",
           "cached_input_tokens + cache_write_input_tokens must be <= input_tokens"),
    AtMost(("reasoning_tokens",), "output_tokens", "must be <= output_tokens"),
]

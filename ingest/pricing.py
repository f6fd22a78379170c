"""Which price is in force for a call, and what the call cost (docs/ingest.md#prices).

A `PriceBook` holds the price rows that can match a set of model ids (the exact rows for
those ids plus every glob), for one project (its overrides) and the global catalogue.
Matching is done once per distinct (model, provider, service_tier); the period in force at
a timestamp is a bisect. Money is exact end to end: per-1M prices have 6 decimals, so they
are held as integer micro-dollars and `tokens * price` is an exact integer count of 10^-12
USD, returned as a Decimal with the 12 decimals of the events table (never a float).

A process keeps each project's book between batches and reloads it when the catalogue's
version (row count and newest row) changes, which costs one index-only query per batch.
"""

from bisect import bisect_right
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase

from .models import (
    COST_CATALOGUE,
    COST_CLIENT,
    COST_OVERRIDE,
    PRICE_FIELDS,
    TIER_UNKNOWN,
    Price,
    glob_literal_length,
)

STANDARD = "standard"
MAX_CACHED_MODELS = 10_000
_LOAD_FIELDS = ["id", "project_id", "model", "is_glob", "provider", "service_tier", "tier", "effective_from",
                *PRICE_FIELDS]


@dataclass(frozen=True, slots=True)
class Rates:
    """Per-1M prices of one band (normal or long context) in integer micro-dollars, fallbacks applied."""

    input: int
    cached_input: int
    cache_write_input: int
    output: int
    reasoning_output: int


def micro(price: Decimal) -> int:
    """A per-1M price (6 decimals) as an exact integer of micro-dollars."""
    scaled = price.scaleb(6)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"price {price} has more than 6 decimals")
    return int(scaled)


@dataclass(frozen=True, slots=True)
class PriceRow:
    id: int
    is_override: bool
    model: str
    is_glob: bool
    provider: str
    service_tier: str
    tier: str
    effective_from: object
    rates: Rates | None  # None: a tier-only override
    long_context_threshold: int | None
    long_context_rates: Rates | None

    @classmethod
    def from_values(cls, values: dict) -> "PriceRow":
        return cls(
            id=values["id"], is_override=values["project_id"] is not None, model=values["model"],
            is_glob=values["is_glob"], provider=values["provider"], service_tier=values["service_tier"] or STANDARD,
            tier=values["tier"], effective_from=values["effective_from"], rates=normal_rates(values),
            long_context_threshold=values["long_context_threshold"], long_context_rates=long_context_rates(values),
        )

    def cost(self, input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens,
             reasoning_tokens) -> Decimal:
        rates = self.rates
        if (self.long_context_rates is not None and self.long_context_threshold is not None
                and input_tokens > self.long_context_threshold):
            rates = self.long_context_rates  # applies to the whole call
        return call_cost(rates, input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens,
                         reasoning_tokens)


def normal_rates(values: dict) -> Rates | None:
    inp, out = values["input_per_mtok"], values["output_per_mtok"]
    if inp is None or out is None:
        return None
    return Rates(
        input=micro(inp),
        cached_input=micro(_first(values["cached_input_per_mtok"], inp)),
        cache_write_input=micro(_first(values["cache_write_input_per_mtok"], inp)),
        output=micro(out),
        reasoning_output=micro(_first(values["reasoning_output_per_mtok"], out)),
    )


def long_context_rates(values: dict) -> Rates | None:
    """Missing long-context cached/cache-write prices fall back to the long-context input price,
    reasoning to the long-context output price (docs/ingest.md#prices)."""
    inp = values["long_context_input_per_mtok"]
    if values["long_context_threshold"] is None or inp is None or values["input_per_mtok"] is None:
        return None
    out = _first(values["long_context_output_per_mtok"], values["output_per_mtok"])
    return Rates(input=micro(inp), cached_input=micro(_first(values["long_context_cached_input_per_mtok"], inp)),
                 cache_write_input=micro(inp), output=micro(out), reasoning_output=micro(out))


def _first(value, fallback):
    return fallback if value is None else value


def call_cost(rates: Rates, input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens,
              reasoning_tokens) -> Decimal:
    uncached = input_tokens - cached_input_tokens - cache_write_input_tokens
    pico_usd = (uncached * rates.input + cached_input_tokens * rates.cached_input
                + cache_write_input_tokens * rates.cache_write_input
                + (output_tokens - reasoning_tokens) * rates.output + reasoning_tokens * rates.reasoning_output)
    return Decimal(pico_usd).scaleb(-12)  # tokens x micro-USD per 1M tokens = 10^-12 USD, exactly


def model_matches(pattern: str, is_glob: bool, model: str) -> bool:
    return fnmatchcase(model, pattern) if is_glob else pattern == model


class Series:
    """The periods of one (scope, model pattern, provider, service_tier), oldest first."""

    __slots__ = ("rows", "starts", "precedence")

    def __init__(self, rows: list[PriceRow]):
        self.rows = sorted(rows, key=lambda row: row.effective_from)
        self.starts = [row.effective_from for row in self.rows]
        first = self.rows[0]
        # Lower sorts first: override before global, exact before glob, longest glob.
        self.precedence = (0 if first.is_override else 1, 1 if first.is_glob else 0,
                           -glob_literal_length(first.model))

    def in_force(self, ts) -> PriceRow | None:
        position = bisect_right(self.starts, ts)
        return self.rows[position - 1] if position else None


@dataclass(slots=True)
class Match:
    price: PriceRow | None
    tier_override: str
    catalogue_tier: str = ""  # the tier of the best-ranked row naming one, when the price row names none

    def tier(self, client_tier: str) -> str:
        """The event's own tier, then a project's tier override, then the price row's, then the catalogue's."""
        return (client_tier or self.tier_override or (self.price.tier if self.price is not None else "")
                or self.catalogue_tier or TIER_UNKNOWN)

    @property
    def cost_source(self) -> str:
        return COST_OVERRIDE if self.price.is_override else COST_CATALOGUE


class PriceBook:
    def __init__(self, rows: list[PriceRow]):
        grouped: dict[tuple, list[PriceRow]] = {}
        for row in rows:
            grouped.setdefault((row.is_override, row.model, row.provider, row.service_tier), []).append(row)
        self.series = [Series(group) for group in grouped.values()]
        self._segments: dict[tuple, tuple[list, list[Match]]] = {}

    @classmethod
    def load(cls, *, project, models) -> "PriceBook":
        """The rows that can match `models` (exact rows for them and every glob), or every row (None)."""
        from django.db.models import Q

        scope = Q(project__isnull=True) | Q(project=project) if project is not None else Q(project__isnull=True)
        values = Price.objects.filter(scope)
        if models is not None:
            values = values.filter(Q(is_glob=True) | Q(model__in=list(models)))
        values = values.values(*_LOAD_FIELDS)
        return cls([PriceRow.from_values(v) for v in values])

    def candidates(self, model: str, provider: str, service_tier: str) -> list[Series]:
        found = []
        for series in self.series:
            first = series.rows[0]
            if first.service_tier not in (service_tier, STANDARD):
                continue
            if first.provider and provider and first.provider != provider:
                continue
            if not model_matches(first.model, first.is_glob, model):
                continue
            found.append(series)
        # Then the event's own service tier before the standard row, a named provider before none.
        found.sort(key=lambda s: (*s.precedence, 0 if s.rows[0].service_tier == service_tier else 1,
                                  0 if s.rows[0].provider else 1))
        return found

    def match(self, *, model, provider, service_tier, ts) -> Match:
        """The best-ranked price in force; a tier from an override, else from the price row, else from
        the best-ranked row that names one (a negotiated-price override often leaves the tier blank).

        The answer for a (model, provider, service_tier) only changes where one of its candidate
        rows starts, so it is worked out once per such segment and found again by a bisect."""
        starts, matches = self.segments(model, provider, service_tier)
        return matches[bisect_right(starts, ts)]

    def segments(self, model, provider, service_tier) -> tuple[list, list[Match]]:
        """(starts, matches): matches[i] is in force from starts[i - 1] on; matches[0] before any start."""
        key = (model, provider or "", service_tier or STANDARD)
        segments = self._segments.get(key)
        if segments is None:
            segments = self._segments_build(*key)
            if len(self._segments) >= MAX_CACHED_MODELS:  # model ids are client text: bound the memory
                self._segments.clear()
            self._segments[key] = segments
        return segments

    def _segments_build(self, model, provider, service_tier) -> tuple[list, list[Match]]:
        candidates = self.candidates(model, provider, service_tier)
        starts = sorted({row.effective_from for series in candidates for row in series.rows})
        # Before the first start nothing is in force; from each start on, match at that start.
        return starts, [Match(price=None, tier_override="")] + [_match_at(candidates, at) for at in starts]

    def price(self, model, provider, service_tier, ts, client_tier, input_tokens, cached_input_tokens,
              cache_write_input_tokens, output_tokens, reasoning_tokens, client_cost_usd) -> tuple:
        """-> (tier, cost_usd, cost_source, price_id) of one call."""
        found = self.match(model=model, provider=provider, service_tier=service_tier, ts=ts)
        price = found.price
        if price is not None:
            cost = price.cost(input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens,
                              reasoning_tokens)
            return found.tier(client_tier), cost, found.cost_source, price.id
        if client_cost_usd is not None:
            return found.tier(client_tier), client_cost_usd, COST_CLIENT, None
        return found.tier(client_tier), None, "", None

    def price_row(self, row: dict) -> None:
        """Fill tier, cost_usd, cost_source and price_id of one event row in place."""
        row["tier"], row["cost_usd"], row["cost_source"], row["price_id"] = self.price(
            row["model"], row.get("provider", ""), row.get("service_tier", STANDARD), row["ts"],
            row.get("client_tier", ""), row["input_tokens"], row.get("cached_input_tokens", 0),
            row.get("cache_write_input_tokens", 0), row["output_tokens"], row.get("reasoning_tokens", 0),
            row.get("client_cost_usd"))


def _match_at(candidates: list[Series], ts) -> Match:
    price, tier_override, catalogue_tier = None, "", ""
    for series in candidates:
        row = series.in_force(ts)
        if row is None:
            continue
        if row.is_override and row.tier and not tier_override:
            tier_override = row.tier
        if price is None and row.rates is not None:
            price = row
        if row.tier and not catalogue_tier and not row.is_override:
            catalogue_tier = row.tier
        if price is not None and (tier_override or price.tier or catalogue_tier):
            break
    return Match(price=price, tier_override=tier_override, catalogue_tier=catalogue_tier)


_books: dict[int | None, tuple[tuple, PriceBook]] = {}


def catalogue_version(project) -> tuple:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), max(id), max(created_at) FROM ingest_price "
                       "WHERE project_id IS NULL OR project_id = %s", [getattr(project, "pk", None)])
        return cursor.fetchone()


def price_book(project) -> PriceBook:
    """The project's whole book (overrides + global), reused while the catalogue is unchanged."""
    key = getattr(project, "pk", None)
    version = catalogue_version(project)
    cached = _books.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    book = PriceBook.load(project=project, models=None)
    _books[key] = (version, book)
    return book


def event_rows_price(*, project, rows: list[dict]) -> PriceBook | None:
    """Fill `tier`, `cost_usd`, `cost_source`, `price_id` in place on rows keyed by Event column names;
    returns the book used."""
    if not rows:
        return None
    book = price_book(project)
    for row in rows:
        book.price_row(row)
    return book


def event_columns_price(*, project, columns: dict[str, list]) -> PriceBook | None:
    """The column form of `event_rows_price`: adds the `tier`, `cost_usd`, `cost_source`, `price_id` columns.

    Events are grouped by (model, provider, service_tier) and by price segment, so the match,
    tier and source are worked out once per group; only the cost is computed per event."""
    count = len(columns["model"])
    tiers, costs, sources, price_ids = [TIER_UNKNOWN] * count, [None] * count, [""] * count, [None] * count
    book = price_book(project) if count else None
    groups: dict[tuple, list[int]] = {}
    for index, key in enumerate(zip(columns["model"], columns["provider"], columns["service_tier"], strict=True)):
        groups.setdefault(key, []).append(index)
    ts, client_tiers, client_costs = columns["ts"], columns["client_tier"], columns["client_cost_usd"]
    inputs, cached, written = columns["input_tokens"], columns["cached_input_tokens"], columns["cache_write_input_tokens"]
    outputs, reasoning = columns["output_tokens"], columns["reasoning_tokens"]
    for key, indexes in groups.items():
        for found, part in _by_segment(book.segments(*key), indexes, ts):
            price = found.price
            for index in part:
                tiers[index] = found.tier(client_tiers[index])
            if price is not None:
                source = found.cost_source
                for index in part:
                    costs[index] = price.cost(inputs[index], cached[index], written[index], outputs[index],
                                              reasoning[index])
                    sources[index], price_ids[index] = source, price.id
            else:
                for index in part:
                    if client_costs[index] is not None:
                        costs[index], sources[index] = client_costs[index], COST_CLIENT
    columns.update(tier=tiers, cost_usd=costs, cost_source=sources, price_id=price_ids)
    return book


def _by_segment(segments, indexes: list[int], ts: list):
    """(match, indexes) per price segment the events at `indexes` fall in; one bisect in all
    when they all fall after the last start (prices that did not change during the batch)."""
    starts, matches = segments
    if not starts or min(ts[index] for index in indexes) >= starts[-1]:
        return [(matches[-1], indexes)]
    parts: dict[int, list[int]] = {}
    for index in indexes:
        parts.setdefault(bisect_right(starts, ts[index]), []).append(index)
    return [(matches[segment], part) for segment, part in parts.items()]

"""The `unpriced_model` warning of an ingest response, with a hint when a near match has a price.

Only a batch holding an event stored without a cost gets here, and each hint is worked out once
per distinct (model, provider) of the batch, so priced traffic pays nothing but one scan of its
cost column. A client-priced event (`cost_usd` sent, no price) has its cost and is not warned.
"""

import re
import weakref

from django.utils import timezone

from .pricing import MAX_CACHED_MODELS, STANDARD, PriceBook

_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_WILDCARD = re.compile(r"[*?\[]")
_FAMILY = re.compile(r"[a-z]+")
FAMILY_EXAMPLES = 3


def unpriced_warnings(*, book, unpriced: list[tuple], request_ids) -> list[dict]:
    """One warning per event stored unpriced. `book`: the price book that priced the batch;
    `unpriced`: (event_id, model, provider) of each; `request_ids`: the batch's event ids in
    request order (an event's `index`)."""
    if not unpriced:
        return []
    index_of = {}
    for index, event_id in enumerate(request_ids):
        index_of.setdefault(event_id, index)
    hints = UnpricedHints(book)
    return [{"index": index_of.get(event_id), "event_id": event_id, "field": "model", "code": "unpriced_model",
             "message": hints.message(model, provider)}
            for event_id, model, provider in unpriced]


# Messages per book: a book lives while the catalogue is unchanged, so a client sending an unpriced
# model in every batch gets its hint worked out once.
_messages: "weakref.WeakKeyDictionary[PriceBook, dict]" = weakref.WeakKeyDictionary()


class UnpricedHints:
    def __init__(self, book: PriceBook):
        self.book, self.now = book, timezone.now()
        self.messages = _messages.setdefault(book, {})

    def message(self, model: str, provider: str) -> str:
        key = (model, provider)
        if key not in self.messages:
            if len(self.messages) >= MAX_CACHED_MODELS:  # model ids are client text: bound the memory
                self.messages.clear()
            scope = f" for provider {provider!r}" if provider else ""
            text = f"model {model!r} has no price{scope}: stored unpriced until a price for it is added"
            hint = self.hint(model, provider)
            self.messages[key] = f"{text}; {hint}" if hint else text
        return self.messages[key]

    def priced(self, model: str, provider: str):
        return self.book.match(model=model, provider=provider, service_tier=STANDARD, ts=self.now).price

    def hint(self, model: str, provider: str) -> str:
        lower = model.lower()
        if lower != model and self.priced(lower, provider):
            return f"model ids are case-sensitive and {lower!r} has a price"
        if "/" in model:
            prefix, rest = model.split("/", 1)
            for candidate in dict.fromkeys([rest, rest.lower()]):
                if self.priced(candidate, provider or prefix):
                    return f"send model {candidate!r} with provider {prefix!r} (a provider prefix is not part of the id)"
        if provider:
            other = self.priced(model, "")
            if other is not None:
                return (f"{model!r} has a price for provider {other.provider or 'any'!r}, not {provider!r}: "
                        f"add a price for {provider!r} or leave provider out")
        return self.near_match(model)

    def known_ids(self) -> dict[str, str]:
        """Literal ids the price book prices -> how to show them: exact ids, globs up to their wildcard."""
        known = {}
        for series in self.book.series:
            row = series.rows[-1]
            if row.rates is None:
                continue
            literal = _WILDCARD.split(row.model, maxsplit=1)[0].rstrip("-_.@:/") if row.is_glob else row.model
            if literal:
                known[literal] = row.model
        return known

    def near_match(self, model: str) -> str:
        """Another spelling of a priced id (`gpt5-mini`, `GPT_5_mini`), else its family's priced ids."""
        squeezed = _NOT_ALNUM.sub("", model.lower())
        known = self.known_ids()
        same = [literal for literal in known if _NOT_ALNUM.sub("", literal.lower()) == squeezed]
        longer = [literal for literal, pattern in known.items()  # `gpt5-mini-0807` for the glob `gpt-5-mini*`
                  if pattern.endswith("*") and not _WILDCARD.search(pattern[:-1])
                  and squeezed.startswith(_NOT_ALNUM.sub("", literal.lower()))]
        for literal in same or sorted(longer, key=len, reverse=True)[:1]:
            return f"did you mean {literal!r}?"
        family = _FAMILY.match(model.lower())
        if family is None or len(family.group()) < 3:
            return ""
        members = sorted({pattern for literal, pattern in known.items() if literal.lower().startswith(family.group())})
        if not members:
            return ""
        examples = ", ".join(members[:FAMILY_EXAMPLES]) + (", ..." if len(members) > FAMILY_EXAMPLES else "")
        return f"other {family.group()} models have prices ({examples}): check the id"

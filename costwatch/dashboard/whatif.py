"""The feature page's what-if panel, from rollups only (the feature_daily frame and ModelDay).

- "Cost if Pro share were X%": the routed calls (primary + escalation) that have a Lite or Pro
  price keep their number, but a share X of them costs the Pro average per call and the rest the
  Lite average; everything else (triage, shadow, unknown tier) costs what it did.
- "Cost if every call were capped at N output tokens": per tier, the output-token histogram
  says by how much the mean output per call shrinks when each call stops at N tokens
  (`buckets.capped_mean`); that fraction of the tier's output tokens is saved at the tier's
  output price (the output-token-weighted catalogue price of the feature's models in that tier).
"""

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from django.db.models import Sum
from django.utils import timezone

from costwatch.metrics import buckets
from costwatch.metrics.models import ModelDay

ZERO = Decimal(0)
MILLION = Decimal(1_000_000)


@dataclass
class WhatIf:
    current_usd: Decimal | None
    whatif_usd: Decimal | None
    note: str = ""

    @property
    def change_usd(self) -> Decimal | None:
        if self.current_usd is None or self.whatif_usd is None:
            return None
        return self.whatif_usd - self.current_usd


def _cost(rows: pd.DataFrame) -> Decimal:
    return sum((Decimal(v) for v in rows["cost_usd"] if v is not None), ZERO)


def total_cost(frame: pd.DataFrame) -> Decimal | None:
    if frame.empty or int(frame["priced_calls"].sum()) == 0:
        return None
    return _cost(frame)


def pro_share_whatif(frame: pd.DataFrame, *, pro_share: float) -> WhatIf:
    current = total_cost(frame)
    if current is None:
        return WhatIf(None, None, "No priced calls in this range.")
    routed = frame[frame["role"].isin(["primary", "escalation"])]
    lite, pro = routed[routed["tier"] == "lite"], routed[routed["tier"] == "pro"]
    lite_priced, pro_priced = int(lite["priced_calls"].sum()), int(pro["priced_calls"].sum())
    if not lite_priced or not pro_priced:
        missing = "Lite" if not lite_priced else "Pro"
        return WhatIf(current, None, f"No priced {missing} calls in this range to take an average cost from.")
    lite_cost, pro_cost = _cost(lite), _cost(pro)
    share = Decimal(str(pro_share))
    calls = lite_priced + pro_priced
    moved = calls * (share * pro_cost / pro_priced + (1 - share) * lite_cost / lite_priced)
    return WhatIf(current, current - lite_cost - pro_cost + moved)


def output_prices_by_tier(*, project, feature, first_day, last_day, environment=None) -> dict[str, Decimal]:
    """Per tier: the feature's output price per token, weighted by each model's output tokens.
    Prices are the ones in force now (ingest's matching), read as the Price rows' own Decimals."""
    from ingest.models import Price
    from ingest.pricing import PriceBook

    rows = ModelDay.objects.filter(project=project, feature=feature, day__gte=first_day, day__lt=last_day)
    if environment:
        rows = rows.filter(environment=environment)
    per_model = list(rows.values("model", "tier").annotate(tokens=Sum("output_tokens")))
    book = PriceBook.load(project=project, models={r["model"] for r in per_model})
    now = timezone.now()
    matched = {r["model"]: book.match(model=r["model"], provider="", service_tier="standard", ts=now).price
               for r in per_model}
    output_per_mtok = dict(Price.objects.filter(pk__in=[p.id for p in matched.values() if p is not None])
                           .values_list("pk", "output_per_mtok"))
    weighted: dict[str, list] = {}
    for row in per_model:
        price = matched[row["model"]]
        per_mtok = output_per_mtok.get(price.id) if price is not None else None
        if per_mtok is None or not row["tokens"]:
            continue
        total = weighted.setdefault(row["tier"], [ZERO, 0])
        total[0] += per_mtok / MILLION * row["tokens"]
        total[1] += row["tokens"]
    return {tier: cost / tokens for tier, (cost, tokens) in weighted.items() if tokens}


def output_cap_whatif(frame: pd.DataFrame, *, cap: int, output_prices: dict[str, Decimal]) -> WhatIf:
    current = total_cost(frame)
    if current is None:
        return WhatIf(None, None, "No priced calls in this range.")
    saved = ZERO
    for tier, rows in frame.groupby("tier"):
        price = output_prices.get(tier)
        hist = buckets.merge_all(rows["output_tokens_hist"])
        mean = buckets.capped_mean(hist, float("inf"))
        if price is None or not mean:
            continue
        capped = buckets.capped_mean(hist, cap)
        fraction = Decimal(str(1 - capped / mean))
        saved += Decimal(int(rows["output_tokens"].sum())) * fraction * price
    return WhatIf(current, current - saved)

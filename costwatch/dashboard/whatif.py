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
from django.utils import timezone

from costwatch.metrics import buckets, selectors
from costwatch.metrics.definitions import ROUTED_ROLES
from ingest.models import Price
from ingest.pricing import PriceBook

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


def _rows(frame: pd.DataFrame, *columns):
    return zip(*(frame[c].tolist() for c in columns), strict=True)


def total_cost(frame: pd.DataFrame) -> Decimal | None:
    if frame.empty or int(frame["priced_calls"].sum()) == 0:
        return None
    return sum((Decimal(c) for c in frame["cost_usd"].tolist() if c is not None), ZERO)


def pro_share_whatif(frame: pd.DataFrame, *, pro_share: float) -> WhatIf:
    current = total_cost(frame)
    if current is None:
        return WhatIf(None, None, "No priced calls in this range.")
    cost = {"lite": ZERO, "pro": ZERO}
    priced = {"lite": 0, "pro": 0}
    for tier, role, row_cost, row_priced in _rows(frame, "tier", "role", "cost_usd", "priced_calls"):
        if role in ROUTED_ROLES and tier in cost:
            cost[tier] += Decimal(row_cost or 0)
            priced[tier] += row_priced
    if not priced["lite"] or not priced["pro"]:
        missing = "Lite" if not priced["lite"] else "Pro"
        return WhatIf(current, None, f"No priced {missing} calls in this range to take an average cost from.")
    share = Decimal(str(pro_share))
    calls = priced["lite"] + priced["pro"]
    moved = calls * (share * cost["pro"] / priced["pro"] + (1 - share) * cost["lite"] / priced["lite"])
    return WhatIf(current, current - cost["lite"] - cost["pro"] + moved)


def output_prices_by_tier(*, project, feature, start, end, environment=None) -> dict[str, Decimal]:
    """Per tier: the feature's output price per token, weighted by each model's output tokens in
    exactly [start, end). Prices are the ones in force now (ingest's matching), read as the Price
    rows' own Decimals."""
    tokens = selectors.feature_output_tokens_by_model(project=project, feature=feature, start=start, end=end,
                                                      environment=environment)
    per_model = [{"model": model, "tier": tier, "tokens": count} for (model, tier), count in tokens.items()]
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
    by_tier: dict[str, list] = {}
    tokens: dict[str, int] = {}
    for tier, hist, output_tokens in _rows(frame, "tier", "output_tokens_hist", "output_tokens"):
        by_tier.setdefault(tier, []).append(hist)
        tokens[tier] = tokens.get(tier, 0) + output_tokens
    hists = {tier: selectors.hist_sum(tier_hists) for tier, tier_hists in by_tier.items()}
    saved = ZERO
    for tier, hist in hists.items():
        price = output_prices.get(tier)
        mean = buckets.capped_mean(hist, float("inf"))
        if price is None or not mean:
            continue
        fraction = Decimal(str(1 - buckets.capped_mean(hist, cap) / mean))
        saved += Decimal(tokens[tier]) * fraction * price
    return WhatIf(current, current - saved)

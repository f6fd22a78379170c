"""Savings recommendations (docs/savings.md#recommendations): three moves per feature, ranked by
dollars per month at current prices, each with the evidence behind it and a status.

- `route_to_lite`: lower the feature's Pro share (of routed calls) to the target, the share of
  pairs where Lite scored more than 0.1 below Pro (at least 5%), moving Pro calls to the
  feature's most used Lite model.
- `route_reason_to_lite`: send every Pro call of one `route_reason` to that Lite model.
- `cap_output`: cap output at the feature's p99 output tokens; needs no pairs.

Monthly savings = window savings x 30 / window days. A Lite move is `recommended` only with at
least 30 shadow pairs, an interval lower bound >= -0.02 and a pair in the last 14 days.
"""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from costwatch.dbrouting import read_connection
from costwatch.metrics import buckets
from costwatch.metrics.definitions import ROUTED_ROLES, WINDOW_28D
from costwatch.metrics.models import FeatureDay, HourlyRollup
from ingest.models import Feature
from ingest.pricing import PriceBook, call_cost

from .histograms import hist_sum
from .savings import Evidence, no_evidence, savings_evidence

MIN_PAIRS = 30
LOWER_BOUND_FLOOR = -0.02
STALE_AFTER = dt.timedelta(days=14)
MIN_TARGET_PRO_SHARE = 0.05
CAP_QUANTILE = 0.99
STATUSES = ("recommended", "thin_evidence", "lite_worse", "stale")
MOVES = ("route_to_lite", "route_reason_to_lite", "cap_output")
HOW_TO_SHADOW = ("Shadow about 1% of this feature's Lite calls to Pro and score both answers "
                 "(role=shadow with parent_event_id, then POST /api/v1/scores); see docs/savings.md.")
TOKENS = ("input_tokens", "cached_input_tokens", "cache_write_input_tokens", "output_tokens", "reasoning_tokens")
ZERO = Decimal(0)


def lite_status(evidence: Evidence, *, now: dt.datetime) -> tuple[str, str]:
    """The status of a Lite move on this evidence, and why."""
    if evidence.pairs < MIN_PAIRS:
        more = MIN_PAIRS - evidence.pairs
        if not evidence.pairs:
            return "thin_evidence", f"No evidence yet (pairs: 0); {MIN_PAIRS} pairs are needed. {HOW_TO_SHADOW}"
        return "thin_evidence", (f"{evidence.pairs} pairs; {more} more needed before this can be recommended. "
                                 f"{HOW_TO_SHADOW}")
    if evidence.newest_pair is None or now - evidence.newest_pair > STALE_AFTER:
        return "stale", "No pair in the last 14 days: models change, so the evidence has expired; shadow again."
    if evidence.ci_low is None or evidence.ci_low < LOWER_BOUND_FLOOR:
        gap = (LOWER_BOUND_FLOOR - evidence.ci_low) if evidence.ci_low is not None else None
        by = f" by {gap:.3f}" if gap is not None else ""
        return "lite_worse", (f"Lite may be worse: the interval's lower bound {evidence.ci_low:.3f} is below "
                              f"{LOWER_BOUND_FLOOR}{by}.")
    return "recommended", (f"Lite is as good within 0.02 on {evidence.pairs} pairs "
                           f"(mean difference {evidence.mean_diff:+.3f}).")


def target_pro_share(evidence: Evidence) -> float:
    worse = evidence.lite_worse_share if evidence.lite_worse_share is not None else 0.0
    return max(MIN_TARGET_PRO_SHARE, worse)


def _usage(project, start):
    """Per (feature_id, tier, role, model, route_reason): calls, token sums and cost over the window."""
    sums = ", ".join(f"sum({name})::bigint" for name in TOKENS)
    with read_connection().cursor() as cursor:
        cursor.execute(
            f"SELECT feature_id, tier, role, model, route_reason, sum(calls)::bigint, {sums}, sum(cost_usd) "
            f"FROM {HourlyRollup._meta.db_table} WHERE project_id = %s AND hour >= %s GROUP BY 1, 2, 3, 4, 5",
            [project.pk, start])
        return cursor.fetchall()


def _output_hists(project, first_day):
    """{(feature_id, tier): output-token histogram} over the window, summed in SQL."""
    with read_connection().cursor() as cursor:
        cursor.execute(f"SELECT feature_id, tier, cw_hist_sum(output_tokens_hist) FROM {FeatureDay._meta.db_table} "
                       "WHERE project_id = %s AND day >= %s GROUP BY 1, 2", [project.pk, first_day])
        return {(feature_id, tier): hist or [] for feature_id, tier, hist in cursor.fetchall()}


class _Prices:
    """Current rates per model (ingest's matching at `now`)."""

    def __init__(self, project, models, now):
        self.book, self.now, self.cache = PriceBook.load(project=project, models=set(models)), now, {}

    def rates(self, model):
        if model not in self.cache:
            price = self.book.match(model=model, provider="", service_tier="standard", ts=self.now).price
            self.cache[model] = price.rates if price is not None else None
        return self.cache[model]

    def cost(self, model, tokens) -> Decimal | None:
        rates = self.rates(model)
        return None if rates is None else call_cost(rates, *tokens)


def _move_to_lite_savings(rows, lite_model, prices, fraction: float) -> Decimal | None:
    """Window savings of moving `fraction` of these Pro rows' calls to the Lite model."""
    saved = ZERO
    for row in rows:
        tokens, cost = row[6:11], row[11]
        lite_cost = prices.cost(lite_model, tokens)
        if lite_cost is None or cost is None:
            return None
        saved += (Decimal(cost) - lite_cost) * Decimal(str(fraction))
    return saved


def recommendations(*, project, feature: str | None = None, status: str | None = None, now=None,
                    window: dt.timedelta = WINDOW_28D) -> list[dict]:
    now = now or timezone.now()
    start = now - window
    days = window / dt.timedelta(days=1)
    usage = _usage(project, start)
    names = dict(Feature.objects.filter(project=project).values_list("pk", "name"))
    evidence = savings_evidence(project=project, start=start, end=now + dt.timedelta(hours=1))
    by_reason = savings_evidence(project=project, start=start, end=now + dt.timedelta(hours=1), by_route_reason=True)
    prices = _Prices(project, {row[3] for row in usage}, now)
    hists = _output_hists(project, (now - window).date())
    per_feature: dict = {}
    for row in usage:
        per_feature.setdefault(row[0], []).append(row)
    results = []
    for feature_id, rows in per_feature.items():
        results += _feature_moves(names.get(feature_id, ""), rows, evidence, by_reason, prices, hists, feature_id,
                                  now=now, days=days, window_days=round(days))
    if feature:
        results = [r for r in results if r["feature"] == feature]
    if status:
        results = [r for r in results if r["status"] == status]
    results.sort(key=lambda r: (-(Decimal(r["monthly_savings_usd"]) if r["monthly_savings_usd"] else ZERO),
                                r["feature"], r["move"]))
    return results


def _monthly(window_savings, days) -> str | None:
    if window_savings is None:
        return None
    return str((window_savings * 30 / Decimal(str(days))).quantize(Decimal("0.01")))


def _feature_moves(name, rows, evidence, by_reason, prices, hists, feature_id, *, now, days, window_days):
    moves = []
    lite_calls: dict = {}
    for row in rows:
        if row[1] == "lite":
            lite_calls[row[3]] = lite_calls.get(row[3], 0) + row[5]
    pro_routed = [row for row in rows if row[1] == "pro" and row[2] in ROUTED_ROLES]
    routed = sum(row[5] for row in rows if row[2] in ROUTED_ROLES and row[1] in ("lite", "pro"))
    pro_calls = sum(row[5] for row in pro_routed)
    lite_model = max(sorted(lite_calls), key=lambda m: lite_calls[m]) if lite_calls else None
    shadow = evidence.get((feature_id, "shadow"), no_evidence())
    escalation = evidence.get((feature_id, "escalation"), no_evidence())
    if pro_calls and lite_model:
        target = target_pro_share(shadow)
        share = pro_calls / routed
        fraction = max(0.0, share - target) / share
        saved = _move_to_lite_savings(pro_routed, lite_model, prices, fraction)
        state, message = lite_status(shadow, now=now)
        moves.append({"feature": name, "move": "route_to_lite", "status": state,
                      "monthly_savings_usd": _monthly(saved, days), "target_pro_share": round(target, 4),
                      "lite_model": lite_model, "evidence": shadow.as_dict(window_days),
                      "escalation_evidence": escalation.as_dict(window_days),
                      "message": f"Lower the Pro share from {share:.0%} to {target:.0%} on {lite_model}. {message}"})
        reasons = sorted({row[4] for row in pro_routed if row[4]})
        for reason in reasons:
            reason_rows = [row for row in pro_routed if row[4] == reason]
            reason_evidence = by_reason.get((feature_id, "shadow", reason), no_evidence())
            state, message = lite_status(reason_evidence, now=now)
            saved = _move_to_lite_savings(reason_rows, lite_model, prices, 1.0)
            moves.append({"feature": name, "move": "route_reason_to_lite", "status": state, "route_reason": reason,
                          "monthly_savings_usd": _monthly(saved, days), "lite_model": lite_model,
                          "evidence": reason_evidence.as_dict(window_days),
                          "message": f"Send route_reason {reason!r} to {lite_model}. {message}"})
    cap = _cap_move(name, rows, prices, hists, feature_id, days=days, window_days=window_days, evidence=shadow)
    if cap:
        moves.append(cap)
    return moves


def _cap_move(name, rows, prices, hists, feature_id, *, days, window_days, evidence):
    hist = hist_sum([hists[(feature_id, tier)] for tier in ("lite", "pro", "unknown") if (feature_id, tier) in hists])
    cap = buckets.quantile(hist, CAP_QUANTILE)
    if cap is None:
        return None
    cap = int(cap)
    saved = ZERO
    for tier in ("lite", "pro"):
        tier_hist = hists.get((feature_id, tier))
        mean = buckets.capped_mean(tier_hist, float("inf"))
        if not mean:
            continue
        fraction = Decimal(str(max(0.0, 1 - buckets.capped_mean(tier_hist, cap) / mean)))
        for row in rows:
            rates = prices.rates(row[3]) if row[1] == tier else None
            if rates is not None:
                out_rate = Decimal(rates.output).scaleb(-12)  # micro-USD per 1M tokens -> USD per token
                saved += Decimal(row[9]) * fraction * out_rate
    if _monthly(saved, days) == "0.00":
        return None  # nothing above the p99 worth a cent a month
    return {"feature": name, "move": "cap_output", "status": "recommended", "cap_tokens": cap,
            "monthly_savings_usd": _monthly(saved, days), "evidence": evidence.as_dict(window_days),
            "message": f"Cap output at {cap} tokens (the feature's p99): calls above it are cut."}

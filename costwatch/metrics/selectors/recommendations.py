"""Savings recommendations (docs/savings.md#recommendations): three moves per feature, ranked by
dollars per month at current prices, each with the evidence behind it and a status.

- `route_to_lite`: lower the feature's Pro share (of routed calls) to the target, the share of
  pairs where Lite scored more than 0.1 below Pro (at least 5%), moving Pro calls to the
  feature's most used Lite model.
- `route_reason_to_lite`: send every Pro call of one `route_reason` to that Lite model.
- `cap_output`: cap output at the feature's p99 output tokens; needs no pairs.

Monthly savings = window savings x 30 / window days, both tiers priced at the current catalogue.
A Lite move is `recommended` only with at least 30 shadow pairs, an interval lower bound >= -0.02
and a pair in the last 14 days. Reads daily rollups (RouteDay, FeatureDay) for the whole days of
the window, HourlyRollup for its edge hours and the pairs table; the answer is cached per
(project, window, hour) and keyed by the rollups' version and the prices' fingerprint, so a
refresh that changed data, or a price change, computes it afresh (docs/savings.md#recommendations).
"""

import datetime as dt
from decimal import Decimal

from django.core.cache import cache
from django.utils import timezone

from costwatch.dbrouting import read_connection
from costwatch.metrics import buckets
from costwatch.metrics.definitions import HOUR, ROUTED_ROLES, WINDOW_7D, WINDOW_24H, WINDOW_28D, hour_floor
from costwatch.metrics.models import FeatureDay, HourlyRollup, RouteDay
from costwatch.metrics.windows import hours_filter, split
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
WINDOWS = {"24h": WINDOW_24H, "7d": WINDOW_7D, "28d": WINDOW_28D}  # the `window` parameter's values
DEFAULT_WINDOW = "28d"
CACHE_SECONDS = 3600


def window_label(window: dt.timedelta) -> str:
    return next((label for label, length in WINDOWS.items() if length == window), f"{window / HOUR:g}h")


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


def _window_parts(project, start, end) -> tuple[str, str, dict]:
    """SQL conditions for the whole project-timezone days of [start, end) (on `day`) and for its
    edge hours (on `hour`), with their parameters: days come from daily tables, edges from hourly."""
    window = split(project, start, end)
    edges, params = hours_filter(window, "hour")
    params.update(project_id=project.pk, first_day=window.first_day, last_day=window.last_day)
    days = "day >= %(first_day)s AND day < %(last_day)s" if window.has_days else "false"
    return days, edges, params


def _usage(project, start, end):
    """Per (feature_id, tier, role, model, route_reason): calls and token sums over exactly [start, end):
    whole days from RouteDay, the edge hours from HourlyRollup."""
    days, edges, params = _window_parts(project, start, end)
    columns = ", ".join(("feature_id, tier, role, model, route_reason, calls", *TOKENS))
    sums = ", ".join(f"sum({name})::bigint" for name in ("calls", *TOKENS))
    with read_connection().cursor() as cursor:
        cursor.execute(
            f"SELECT feature_id, tier, role, model, route_reason, {sums} FROM ("
            f"SELECT {columns} FROM {RouteDay._meta.db_table} WHERE project_id = %(project_id)s AND {days} "
            "AND tier IN ('lite', 'pro') UNION ALL "
            f"SELECT {columns} FROM {HourlyRollup._meta.db_table} WHERE project_id = %(project_id)s AND {edges} "
            "AND tier IN ('lite', 'pro')) usage GROUP BY 1, 2, 3, 4, 5", params)
        return cursor.fetchall()


def _output_hists(project, start, end):
    """{(feature_id, tier): output-token histogram} over exactly [start, end): the whole
    project-timezone days from FeatureDay, the edge hours from HourlyRollup, summed in SQL."""
    days, edges, params = _window_parts(project, start, end)
    with read_connection().cursor() as cursor:
        cursor.execute(
            f"SELECT feature_id, tier, cw_hist_sum(output_tokens_hist) FROM {FeatureDay._meta.db_table} "
            f"WHERE project_id = %(project_id)s AND {days} GROUP BY 1, 2 UNION ALL "
            f"SELECT feature_id, tier, cw_hist_sum(output_tokens_hist) FROM {HourlyRollup._meta.db_table} "
            f"WHERE project_id = %(project_id)s AND {edges} GROUP BY 1, 2", params)
        parts: dict = {}
        for feature_id, tier, hist in cursor.fetchall():
            parts.setdefault((feature_id, tier), []).append(hist or [])
    return {key: hist_sum(hists) for key, hists in parts.items()}


class _Prices:
    """Current rates per model (ingest's matching at `now`): both tiers are priced at them, never
    at the stored event costs, so a price change shows at once."""

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
    """Window savings of moving `fraction` of these Pro rows' calls to the Lite model, both sides
    re-priced at current prices (None when either model has no price now)."""
    saved = ZERO
    for row in rows:
        tokens = row[6:11]
        pro_cost, lite_cost = prices.cost(row[3], tokens), prices.cost(lite_model, tokens)
        if lite_cost is None or pro_cost is None:
            return None
        saved += (pro_cost - lite_cost) * Decimal(str(fraction))
    return saved


def window_bounds(now: dt.datetime, window: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a recommendations window: it ends at the start of the next hour (the
    current hour is in), like the read API's default range."""
    end = hour_floor(now) + HOUR
    return end - window, end


def recommendations_compute(*, project, now=None, window: dt.timedelta = WINDOW_28D) -> list[dict]:
    """Every move of every feature, ranked by dollars per month (no cache; see recommendations)."""
    now = now or timezone.now()
    start, end = window_bounds(now, window)
    days = window / dt.timedelta(days=1)
    usage = _usage(project, start, end)
    names = dict(Feature.objects.filter(project=project).values_list("pk", "name"))
    evidence = savings_evidence(project=project, start=start, end=end)
    by_reason = savings_evidence(project=project, start=start, end=end, by_route_reason=True)
    prices = _Prices(project, {row[3] for row in usage}, now)
    hists = _output_hists(project, start, end)
    per_feature: dict = {}
    for row in usage:
        per_feature.setdefault(row[0], []).append(row)
    label = window_label(window)
    results = []
    for feature_id, rows in per_feature.items():
        results += _feature_moves(names.get(feature_id, ""), rows, evidence, by_reason, prices, hists, feature_id,
                                  now=now, days=days, label=label)
    results.sort(key=lambda r: (-(Decimal(r["monthly_savings_usd"]) if r["monthly_savings_usd"] else ZERO),
                                r["feature"], r["move"]))
    return results


def _monthly(window_savings, days) -> str | None:
    if window_savings is None:
        return None
    return str((window_savings * 30 / Decimal(str(days))).quantize(Decimal("0.01")))


def _feature_moves(name, rows, evidence, by_reason, prices, hists, feature_id, *, now, days, label):
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
                      "lite_model": lite_model, "evidence": shadow.as_dict(label),
                      "escalation_evidence": escalation.as_dict(label),
                      "message": f"Lower the Pro share from {share:.0%} to {target:.0%} on {lite_model}. {message}"})
        reasons = sorted({row[4] for row in pro_routed if row[4]})
        for reason in reasons:
            reason_rows = [row for row in pro_routed if row[4] == reason]
            reason_evidence = by_reason.get((feature_id, "shadow", reason), no_evidence())
            state, message = lite_status(reason_evidence, now=now)
            saved = _move_to_lite_savings(reason_rows, lite_model, prices, 1.0)
            moves.append({"feature": name, "move": "route_reason_to_lite", "status": state, "route_reason": reason,
                          "monthly_savings_usd": _monthly(saved, days), "lite_model": lite_model,
                          "evidence": reason_evidence.as_dict(label),
                          "message": f"Send route_reason {reason!r} to {lite_model}. {message}"})
    cap = _cap_move(name, rows, prices, hists, feature_id, days=days, label=label, evidence=shadow)
    if cap:
        moves.append(cap)
    return moves


def _cap_move(name, rows, prices, hists, feature_id, *, days, label, evidence):
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
            "monthly_savings_usd": _monthly(saved, days), "evidence": evidence.as_dict(label),
            "message": f"Cap output at {cap} tokens (the feature's p99): calls above it are cut."}


def _data_version(project, now) -> tuple:
    """What the answer depends on besides the hour: the rollups' version (bumped by every refresh
    that changed data) and a fingerprint of the project's price rows (any edit, any new row, and a
    dated row coming into force)."""
    with read_connection().cursor() as cursor:
        cursor.execute(
            "SELECT coalesce((SELECT version FROM metrics_rollupstate WHERE project_id = %(project_id)s), 0), "
            "(SELECT md5(coalesce(string_agg(p::text, ',' ORDER BY p.id), '')) || ':' "
            "|| count(*) FILTER (WHERE p.effective_from <= %(now)s) "
            " FROM ingest_price p WHERE p.project_id IS NULL OR p.project_id = %(project_id)s)",
            {"project_id": project.pk, "now": now})
        return cursor.fetchone()


def recommendations(*, project, feature: str | None = None, status: str | None = None, now=None,
                    window: str = DEFAULT_WINDOW) -> list[dict]:
    """The moves of `window` (a key of WINDOWS), ranked by dollars, optionally of one feature or
    status; computed at most once per hour and data version (see the module's docstring)."""
    now = now or timezone.now()
    version, prices = _data_version(project, now)
    key = f"costwatch:recommendations:{project.pk}:{window}:{hour_floor(now):%Y%m%d%H}:{version}:{prices}"
    results = cache.get(key)
    if results is None:
        results = recommendations_compute(project=project, now=now, window=WINDOWS[window])
        cache.set(key, results, CACHE_SECONDS)
    if feature:
        results = [r for r in results if r["feature"] == feature]
    if status:
        results = [r for r in results if r["status"] == status]
    return results

"""Each rule kind is a small pure function: rollup numbers in, a Verdict out (docs/alerts.md#rules).

No database here. The numbers a verdict carries are what a person needs to see why it
fired (or did not): the window's counts, the share, the threshold, the guard. Money is
Decimal (shown as a string); shares are floats 0-1 (ratios of counts, not money).
"""

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from costwatch.metrics.definitions import WINDOW_28D, money_str


def _share(part, whole):
    return part / whole if whole else None


def _ratio(part: str, whole: str) -> property:
    """A read-only ratio of two of a window's counters; None when the denominator is 0."""
    return property(lambda window: _share(getattr(window, part), getattr(window, whole)))


@dataclass
class Window:
    """Sums of FeatureHour counters over one window of hourly buckets."""

    calls: int = 0
    routed_calls: int = 0
    routed_pro_calls: int = 0
    routed_pro_default_calls: int = 0
    primary_calls: int = 0
    triage_calls: int = 0
    escalation_calls: int = 0
    output_tokens: int = 0
    cap_known_calls: int = 0
    uncapped_calls: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_calls: int = 0
    active_days: int = 0  # days (24-bucket chunks) with calls; only filled for baselines

    pro_share = _ratio("routed_pro_calls", "routed_calls")
    uncapped_share = _ratio("uncapped_calls", "cap_known_calls")
    output_tokens_per_call = _ratio("output_tokens", "calls")
    escalation_rate = _ratio("escalation_calls", "primary_calls")


@dataclass
class Verdict:
    fired: bool
    numbers: dict = field(default_factory=dict)
    message: str = ""
    level: int | None = None  # spend_budget: the highest threshold percent crossed


def _pct(value):
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _points(change) -> str:
    """A change of a share, in percentage points (a share of 16.9% -> 17.3% is +0.4 pp, not +0.4%)."""
    return "n/a" if change is None else f"{change * 100:+.1f} pp"


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _r(value, places=4):
    return None if value is None else round(float(value), places)


# --- parameters -------------------------------------------------------------------------

# name -> (default, parser). A parser returns the clean value or raises ValueError(message).
def _number(lo=None, hi=None, integer=False):
    def parse(value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        if integer and int(value) != value:
            raise ValueError("must be a whole number")
        if lo is not None and value < lo:
            raise ValueError(f"must be >= {lo}")
        if hi is not None and value > hi:
            raise ValueError(f"must be <= {hi}")
        return int(value) if integer else float(value)

    return parse


def _decimal_string(value):
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a decimal string such as \"50.00\"")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("must be a decimal string such as \"50.00\"") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError("must be > 0")
    return str(amount)


def _choice(*options):
    def parse(value):
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _thresholds(value):
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of percents, e.g. [50, 80, 100]")
    parse = _number(1, 1000, integer=True)
    clean = sorted({parse(v) for v in value})
    return clean


REQUIRED = object()
PARAM_SPECS = {
    "unbounded_output": {
        "min_calls": (100, _number(1, integer=True)),
        "uncapped_share": (0.05, _number(0, 1)),
        "output_ratio": (1.5, _number(1)),
        "min_baseline_calls": (500, _number(1, integer=True)),
    },
    "pro_default": {
        "min_calls": (100, _number(1, integer=True)),
        "pro_share": (0.40, _number(0, 1)),
        "expected_margin": (0.10, _number(0, 1)),
        "min_pro_calls": (50, _number(1, integer=True)),
        "default_route_share": (0.5, _number(0, 1)),
    },
    "share_drift": {
        "min_points": (0.10, _number(0, 1)),
        "min_calls": (200, _number(1, integer=True)),
        "p_value": (0.01, _number(0, 1)),
    },
    "escalation_band": {
        "low": (0.05, _number(0, 1)),
        "high": (0.20, _number(0, 1)),
        "min_primary_calls": (200, _number(1, integer=True)),
    },
    "unpriced_traffic": {},
    "spend_spike": {
        "factor": (2.0, _number(1)),
        "min_usd": ("5", _decimal_string),
        "min_days": (7, _number(0, WINDOW_28D.days, integer=True)),
    },
    "spend_budget": {
        "period": ("month", _choice("day", "week", "month")),
        "amount_usd": (REQUIRED, _decimal_string),
        "thresholds": ([50, 80, 100], _thresholds),
        "basis": ("actual", _choice("actual", "forecast")),
    },
}


def params_clean(kind: str, params) -> tuple[dict, list[tuple[str, str, str]]]:
    """Defaults merged with the given params -> (clean params, [(field, code, message)])."""
    if not isinstance(params, dict):
        return {}, [("params", "invalid", "must be an object")]
    spec = PARAM_SPECS[kind]
    errors = [(f"params.{name}", "unknown", f"not a parameter of {kind}; use {', '.join(spec) or 'none'}")
              for name in params if name not in spec]
    clean = {}
    for name, (default, parse) in spec.items():
        if name not in params:
            if default is REQUIRED:
                errors.append((f"params.{name}", "required", f"{kind} needs {name}"))
            else:
                clean[name] = default
            continue
        try:
            clean[name] = parse(params[name])
        except ValueError as exc:
            errors.append((f"params.{name}", "invalid", str(exc)))
    if kind == "escalation_band" and not errors and clean["low"] >= clean["high"]:
        errors.append(("params.low", "invalid", "must be below params.high"))
    return clean, errors


def defaults(kind: str) -> dict:
    return params_clean(kind, {})[0]


# --- the rules --------------------------------------------------------------------------

def unbounded_output(*, last_24h: Window, baseline: Window, params: dict) -> Verdict:
    """Calls without a real output cap, or output per call well above its 28-day baseline."""
    p = {**defaults("unbounded_output"), **params}
    per_call = last_24h.output_tokens_per_call
    base_per_call = baseline.output_tokens_per_call
    ratio = per_call / base_per_call if per_call is not None and base_per_call else None
    numbers = {
        "calls_24h": last_24h.calls, "cap_known_calls_24h": last_24h.cap_known_calls,
        "uncapped_calls_24h": last_24h.uncapped_calls, "uncapped_share": _r(last_24h.uncapped_share),
        "uncapped_share_threshold": p["uncapped_share"], "output_tokens_per_call": _r(per_call, 1),
        "baseline_output_tokens_per_call": _r(base_per_call, 1), "baseline_calls": baseline.calls,
        "output_ratio": _r(ratio, 3), "output_ratio_threshold": p["output_ratio"], "min_calls": p["min_calls"],
    }
    if last_24h.calls < p["min_calls"]:
        return Verdict(False, numbers, f"{_count(last_24h.calls, 'call')} in 24 h, below the {p['min_calls']}-call guard")
    uncapped = last_24h.uncapped_share is not None and last_24h.uncapped_share >= p["uncapped_share"]
    grew = (ratio is not None and baseline.calls >= p["min_baseline_calls"] and ratio >= p["output_ratio"])
    reasons = []
    if uncapped:
        reasons.append(f"{_pct(last_24h.uncapped_share)} of calls set no output cap "
                       f"(threshold {_pct(p['uncapped_share'])})")
    if grew:
        reasons.append(f"output tokens per call {per_call:.0f} is {ratio:.2f}x the 28-day baseline "
                       f"{base_per_call:.0f}")
    if reasons:
        return Verdict(True, numbers, "; ".join(reasons) + f" over {_count(last_24h.calls, 'call')} in the last 24 h.")
    return Verdict(False, numbers, "output is capped and in line with its baseline")


def pro_default(*, last_24h: Window, params: dict, expected_pro_share: float | None = None) -> Verdict:
    """Routing that sends too much to Pro, or sends Pro because of a default/fallback route."""
    p = {**defaults("pro_default"), **params}
    threshold = p["pro_share"] if expected_pro_share is None else expected_pro_share + p["expected_margin"]
    share = last_24h.pro_share
    default_share = _share(last_24h.routed_pro_default_calls, last_24h.routed_pro_calls)
    numbers = {
        "routed_calls_24h": last_24h.routed_calls, "pro_calls_24h": last_24h.routed_pro_calls,
        "pro_share": _r(share), "pro_share_threshold": _r(threshold), "expected_pro_share": expected_pro_share,
        "pro_default_route_calls_24h": last_24h.routed_pro_default_calls,
        "pro_default_route_share": _r(default_share), "default_route_share_threshold": p["default_route_share"],
        "min_calls": p["min_calls"], "min_pro_calls": p["min_pro_calls"],
    }
    reasons = []
    if last_24h.routed_calls >= p["min_calls"] and share is not None and share >= threshold:
        reasons.append(f"Pro share is {_pct(share)} of {last_24h.routed_calls} primary+escalation calls "
                       f"(threshold {_pct(threshold)})")
    if (last_24h.routed_pro_calls >= p["min_pro_calls"] and default_share is not None
            and default_share >= p["default_route_share"]):
        reasons.append(f"{_pct(default_share)} of {last_24h.routed_pro_calls} Pro calls were routed by "
                       f"'default' or 'fallback'")
    if reasons:
        return Verdict(True, numbers, "; ".join(reasons) + " in the last 24 h.")
    return Verdict(False, numbers, f"Pro share {_pct(share)} within {_pct(threshold)} or below the volume guard")


def one_sided_two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """P(share 1 > share 2 by chance): pooled two-proportion z-test, one-sided, via erfc."""
    if not n1 or not n2:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return 0.5 * math.erfc(z / math.sqrt(2))


def share_drift(*, last_7d: Window, baseline_28d: Window, params: dict) -> Verdict:
    """Slow creep from Lite to Pro: 7-day Pro share significantly above the 28 days before."""
    p = {**defaults("share_drift"), **params}
    recent, base = last_7d.pro_share, baseline_28d.pro_share
    change = recent - base if recent is not None and base is not None else None
    p_value = one_sided_two_proportion_p(last_7d.routed_pro_calls, last_7d.routed_calls,
                                         baseline_28d.routed_pro_calls, baseline_28d.routed_calls)
    numbers = {
        "pro_share_7d": _r(recent), "pro_share_28d_before": _r(base), "change_points": _r(change),
        "routed_calls_7d": last_7d.routed_calls, "routed_calls_28d_before": baseline_28d.routed_calls,
        "p_value": float(f"{p_value:.3g}"), "min_points": p["min_points"], "p_value_threshold": p["p_value"],
        "min_calls": p["min_calls"],
    }
    if min(last_7d.routed_calls, baseline_28d.routed_calls) < p["min_calls"]:
        return Verdict(False, numbers, f"fewer than {p['min_calls']} primary+escalation calls in a window")
    # A small epsilon so that exactly 10 points (0.50 - 0.40 in floating point) counts as 10.
    if change is not None and change >= p["min_points"] - 1e-9 and p_value < p["p_value"]:
        return Verdict(True, numbers,
                       f"Pro share rose from {_pct(base)} (28 days before) to {_pct(recent)} over the last 7 days, "
                       f"{_points(change)} (p = {p_value:.2g}).")
    return Verdict(False, numbers, f"Pro share change {_points(change)} is not a significant rise")


def escalation_band(*, last_7d: Window, params: dict) -> Verdict:
    """Escalation rate outside its band: too low wastes Lite, too high wastes the triage."""
    p = {**defaults("escalation_band"), **params}
    rate = last_7d.escalation_rate
    numbers = {
        "escalation_rate": _r(rate), "escalation_calls_7d": last_7d.escalation_calls,
        "primary_calls_7d": last_7d.primary_calls, "triage_calls_7d": last_7d.triage_calls,
        "low": p["low"], "high": p["high"], "min_primary_calls": p["min_primary_calls"],
    }
    if not (last_7d.triage_calls or last_7d.escalation_calls):
        return Verdict(False, numbers, "no triage or escalation calls: not a routed feature")
    if last_7d.primary_calls < p["min_primary_calls"]:
        return Verdict(False, numbers, f"{_count(last_7d.primary_calls, 'primary call')}, below the guard")
    if rate < p["low"] or rate > p["high"]:
        side = "below" if rate < p["low"] else "above"
        return Verdict(True, numbers,
                       f"Escalation rate {_pct(rate)} over 7 days is {side} the {_pct(p['low'])}-{_pct(p['high'])} "
                       f"band ({last_7d.escalation_calls} escalations / {last_7d.primary_calls} primary calls).")
    return Verdict(False, numbers, f"escalation rate {_pct(rate)} within band")


def unpriced_traffic(*, unpriced_calls_by_model: dict[str, int], params: dict | None = None) -> Verdict:
    """Any call to a model without a price in the last 24 h: its cost is invisible."""
    models = {m: n for m, n in sorted(unpriced_calls_by_model.items()) if n > 0}
    numbers = {"unpriced_calls_24h": sum(models.values()), "models": models}
    if not models:
        return Verdict(False, numbers, "every call in the last 24 h was priced")
    listed = ", ".join(f"{m} ({n})" for m, n in models.items())
    return Verdict(True, numbers, f"{_count(numbers['unpriced_calls_24h'], 'call')} in the last 24 h went to models "
                                  f"with no price: {listed}. Add a price so their cost counts.")


def spend_spike(*, last_24h: Window, baseline_28d: Window, params: dict) -> Verdict:
    """A feature's last-24-h cost at least `factor` x its mean daily cost of the 28 days before."""
    p = {**defaults("spend_spike"), **params}
    mean_daily = baseline_28d.cost_usd / WINDOW_28D.days
    cost = last_24h.cost_usd
    min_usd = Decimal(p["min_usd"])
    numbers = {
        "cost_24h_usd": money_str(cost, decimals=6),
        "mean_daily_cost_28d_usd": money_str(mean_daily, decimals=6),
        "ratio": _r(cost / mean_daily, 3) if mean_daily else None, "factor": p["factor"],
        "increase_usd": money_str(cost - mean_daily, decimals=6), "min_usd": p["min_usd"],
        "baseline_active_days": baseline_28d.active_days, "min_days": p["min_days"],
    }
    if baseline_28d.active_days < p["min_days"]:
        return Verdict(False, numbers, f"calls on {baseline_28d.active_days} of the 28 days before, "
                                       f"below the {p['min_days']}-day guard")
    if cost >= mean_daily * Decimal(str(p["factor"])) and cost - mean_daily >= min_usd:
        return Verdict(True, numbers,
                       f"Cost in the last 24 h is ${cost:.2f}, {numbers['ratio'] or 'inf'}x the mean daily "
                       f"${mean_daily:.2f} of the 28 days before (+${cost - mean_daily:.2f}).")
    return Verdict(False, numbers, "cost in line with the 28-day mean")


def spend_budget(*, spent_usd: Decimal, elapsed_fraction: float, params: dict) -> Verdict:
    """Spend in the current period against a budget; `level` = highest threshold crossed."""
    p = {**defaults("spend_budget"), **params}
    amount = Decimal(p["amount_usd"])
    forecast = spent_usd / Decimal(str(elapsed_fraction)) if elapsed_fraction > 0 else None
    forecast_usable = forecast is not None and elapsed_fraction >= 0.2
    basis_value = spent_usd if p["basis"] == "actual" else (forecast if forecast_usable else None)
    crossed = [t for t in p["thresholds"] if basis_value is not None and basis_value * 100 >= amount * t]
    level = max(crossed) if crossed else None
    numbers = {
        "period": p["period"], "amount_usd": money_str(amount, decimals=6),
        "spent_usd": money_str(spent_usd, decimals=6),
        "forecast_usd": money_str(forecast, decimals=6) if forecast_usable else None, "basis": p["basis"],
        "spent_percent": _r(spent_usd * 100 / amount, 1), "elapsed_fraction": _r(elapsed_fraction, 3),
        "thresholds": p["thresholds"], "level": level,
    }
    if level is None:
        return Verdict(False, numbers, "below every threshold", level=None)
    what = "spent" if p["basis"] == "actual" else "forecast to spend"
    value = spent_usd if p["basis"] == "actual" else forecast
    return Verdict(True, numbers, f"{level}% of the {p['period']} budget ${amount:.2f} reached: {what} "
                                  f"${value:.2f} (spent so far ${spent_usd:.2f}).", level=level)


def spend_budget_floor(*, elapsed_fraction: float, params: dict) -> Decimal | None:
    """The least spend that could reach the lowest threshold (None: nothing can fire yet), so a
    budget on every value of a dimension turns only the values at or above it into verdicts.
    A little below the exact bound: spend_budget itself decides the values near it."""
    p = {**defaults("spend_budget"), **params}
    lowest = Decimal(p["amount_usd"]) * min(p["thresholds"]) / 100
    if p["basis"] == "actual":
        return lowest * Decimal("0.999")
    if elapsed_fraction < 0.2:
        return None
    return lowest * Decimal(str(elapsed_fraction)) * Decimal("0.999")


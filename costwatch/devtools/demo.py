"""A realistic, reproducible demo workload: what `seed_demo` writes and `bench_dashboard` reuses.

Vectorised with numpy so 100k events take a second or two to generate and 10M events can be
streamed in batches. Rows are keyed by Event column names with `feature` as its name, ready for
`ingest.pricing.event_rows_price` and `ingest.services.event_rows_store`.

The features tell the three stories costwatch exists for, and each one is loud enough that the
first rule cycle after `seed_demo` (its "now" is the time of seeding) opens exactly its alert:
- `draft-reply` routes to Pro by default (route_reason "default") and is being adopted (its
  daily volume grows), so the last 24 h hold well over pro_default's 100-call guard;
- `summarize-thread` creeps slowly from ~10% Pro (9% -> 12%) for most of the period, then the
  creep steepens over the last two weeks (an S-curve from 13 to 5 days before the end, half done
  at 9) to ~29%: the last 7 days sit ~15 points above the 28 days before (share_drift fires),
  while the last 24 h stay ~10 points under pro_default's 40% (not 35%: that would sit within
  the noise of 100-300 calls a day of the threshold, and open a second, wrong alert);
- `code-review` sends calls with no max-output cap (long, unbounded outputs) and is the fastest
  growing feature, so the last 24 h hold well over unbounded_output's 100-call guard;
plus Lite-first features that fire nothing: `ticket-triage` with triage, escalation (~10% of
primaries, inside escalation_band's 5-20%) and shadow traffic (quality scores), `search-rank`,
and `intent-router` on a self-hosted model that has no price (unpriced_traffic); a few errors,
latency/ttft and customer/plan attributes. Volumes are ratios of `events`, so the guards hold
at any size with the same density (e.g. 50k+ events over 90 days, or 20k over 36 days).
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.db.models import Sum
from django.utils import timezone

from budgets.models import Rule
from budgets.rules import params_clean
from budgets.services import rule_create
from costwatch.metrics.models import DimensionDay
from ingest.catalogue import price_create, price_delete
from ingest.models import Price
from ingest.pricing import PriceBook

DEMO_PRICES = [
    # model, provider, tier, input, cached input, output per 1M tokens (USD), up to 200k tokens
    ("gemini-2.5-flash-lite", "google", "lite", "0.10", "0.01", "0.40"),
    ("gemini-2.5-pro", "google", "pro", "1.25", "0.125", "10.00"),
    ("gpt-4.1-mini", "openai", "lite", "0.40", "0.10", "1.60"),
    ("gpt-4.1", "openai", "pro", "2.00", "0.50", "8.00"),
]
UNPRICED_MODEL = ("acme-intent-ft-v3", "self-hosted")
PROVIDERS = {model: provider for model, provider, *_ in DEMO_PRICES} | {UNPRICED_MODEL[0]: UNPRICED_MODEL[1]}
CUSTOMERS = ["northwind", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "acme", "tyrell", "wonka"]
PLANS = {c: ("enterprise" if i < 3 else "team" if i < 7 else "free") for i, c in enumerate(CUSTOMERS)}


@dataclass(frozen=True)
class FeatureProfile:
    name: str
    weight: float  # share of primary calls over the whole period
    lite_model: str
    pro_model: str
    pro_share_start: float  # Pro share of primaries at the start, rising linearly to ...
    pro_share_end: float  # ... this at the end (before the surge)
    pro_reason: str  # route_reason of Pro primaries
    cap: int | None  # max_output_tokens; None = no cap
    input_mean: float
    output_mean: float
    triage: bool = False
    escalation_rate: float = 0.0  # share of Lite primaries retried on Pro
    shadow_rate: float = 0.0  # share of Lite primaries copied to Pro for comparison
    growth: float = 1.0  # daily volume at the end / at the start (exponential), on top of the project's growth
    pro_surge: float = 0.0  # extra Pro share added by a late S-curve: the creep steepening ...
    surge_days: float = 9.0  # ... half done this many days before the end (over ~2 weeks)
    quality_gap: float = 0.0  # mean Lite - Pro quality on shadow pairs (the Savings page's evidence)


SURGE_WIDTH_DAYS = 1.5

FEATURES = [
    FeatureProfile("ticket-triage", 0.18, "gemini-2.5-flash-lite", "gemini-2.5-pro", 0.06, 0.07, "complex",
                   512, 1400, 160, triage=True, escalation_rate=0.11, shadow_rate=0.05),
    FeatureProfile("search-rank", 0.13, "gemini-2.5-flash-lite", "gemini-2.5-pro", 0.03, 0.03, "complex",
                   256, 2200, 60, shadow_rate=0.002),
    FeatureProfile("summarize-thread", 0.24, "gpt-4.1-mini", "gpt-4.1", 0.09, 0.12, "long_context",
                   1024, 5200, 380, shadow_rate=0.03, pro_surge=0.17, quality_gap=-0.12),
    FeatureProfile("draft-reply", 0.19, "gpt-4.1-mini", "gpt-4.1", 0.72, 0.74, "default",
                   800, 2600, 420, growth=5.0),
    FeatureProfile("code-review", 0.17, "gemini-2.5-flash-lite", "gemini-2.5-pro", 0.20, 0.22, "complex",
                   None, 7800, 1500, growth=10.0),
    FeatureProfile("intent-router", 0.09, UNPRICED_MODEL[0], "gpt-4.1", 0.02, 0.02, "fallback",
                   64, 300, 12),
]


def demo_prices() -> list[dict]:
    """Prices for the demo models, used as overrides on the demo project only where no price covers
    them (the catalogue normally does; the self-hosted model stays unpriced on purpose)."""
    return [
        {"model": model, "provider": provider, "tier": tier, "input_per_mtok": Decimal(inp),
         "cached_input_per_mtok": Decimal(cached), "output_per_mtok": Decimal(out)}
        for model, provider, tier, inp, cached, out in DEMO_PRICES
    ]


def _day_weights(start: dt.datetime, days: int) -> np.ndarray:
    """Relative traffic per day: weekday-heavy, slowly growing."""
    weekend = (np.arange(days) + start.weekday()) % 7 >= 5
    return np.linspace(1.0, 1.35, days) * np.where(weekend, 0.7, 1.0)


def _timestamps(rng, count: int, start: dt.datetime, days: int, growth: float = 1.0) -> np.ndarray:
    """Seconds after `start`: weekday-heavy, office-hours-heavy (UTC), growing by `growth` over the period."""
    day_weights = _day_weights(start, days) * growth ** np.linspace(0.0, 1.0, days)
    day = rng.choice(days, size=count, p=day_weights / day_weights.sum())
    utc_hour = (np.arange(24) + start.hour + start.minute / 60) % 24  # offset hour -> hour of the UTC day
    hour_weights = 0.35 + np.exp(-((utc_hour - 14.5) ** 2) / 18.0)
    hour = rng.choice(24, size=count, p=hour_weights / hour_weights.sum())
    return day * 86400.0 + hour * 3600.0 + rng.uniform(0, 3600, size=count)


def pro_share_at(feat: np.ndarray, seconds: np.ndarray, days: int) -> np.ndarray:
    """Pro share of primaries of features `feat` (indexes into FEATURES) at `seconds` after the start."""
    def column(name):
        return np.array([getattr(f, name) for f in FEATURES])[feat]

    progress = seconds / (days * 86400.0)
    days_before_end = days - seconds / 86400.0
    surge = column("pro_surge") / (1 + np.exp((days_before_end - column("surge_days")) / SURGE_WIDTH_DAYS))
    start = column("pro_share_start")
    return start + (column("pro_share_end") - start) * progress + surge


def _lognormal(rng, mean: np.ndarray, sigma: float) -> np.ndarray:
    return rng.lognormal(np.log(mean) - sigma**2 / 2, sigma)


class _Columns(dict):
    """Column name -> numpy array, all of one length."""


def _primaries(rng, count: int, *, start: dt.datetime, days: int, seed: int, offset: int) -> _Columns:
    weights = np.array([f.weight for f in FEATURES])
    counts = rng.multinomial(count, weights / weights.sum())
    feat = np.repeat(np.arange(len(FEATURES)), counts)
    seconds = np.concatenate([_timestamps(rng, n, start, days, f.growth) for f, n in zip(FEATURES, counts, strict=True)])
    order = np.argsort(seconds)
    feat, seconds = feat[order], seconds[order]
    is_pro = rng.random(count) < pro_share_at(feat, seconds, days)
    lite_models = np.array([f.lite_model for f in FEATURES], dtype=object)
    pro_models = np.array([f.pro_model for f in FEATURES], dtype=object)
    model = np.where(is_pro, pro_models[feat], lite_models[feat])
    reason = np.where(is_pro, np.array([f.pro_reason for f in FEATURES], dtype=object)[feat], "simple")
    input_tokens = np.maximum(20, _lognormal(rng, np.array([f.input_mean for f in FEATURES])[feat], 0.6)).astype(int)
    out_mean = np.array([f.output_mean for f in FEATURES])[feat] * np.where(is_pro, 1.3, 1.0)
    sigma = np.where(np.array([f.cap is None for f in FEATURES])[feat], 1.0, 0.55)
    output_tokens = np.clip(_lognormal(rng, out_mean, sigma), 1, 16_384).astype(int)  # the models' own limit
    cap = np.array([f.cap or 0 for f in FEATURES])[feat]
    capped = cap > 0
    hit = capped & (output_tokens >= cap)
    output_tokens = np.where(hit, cap, output_tokens)
    error = rng.random(count) < 0.012
    cols = _Columns(
        index=np.arange(offset, offset + count), seconds=seconds, feat=feat, model=model, is_pro=is_pro,
        role=np.full(count, "primary", dtype=object), route_reason=reason, input_tokens=input_tokens,
        output_tokens=np.where(error, 0, output_tokens), cap=cap,
        finish=np.where(error, "error", np.where(hit, "length", "stop")).astype(object),
        status=np.where(error, "error", "ok").astype(object),
    )
    cols["request"] = cols["index"]
    cols["parent"] = np.full(count, -1)
    cols["confidence"] = np.where(is_pro, np.nan, rng.beta(6, 1.6, size=count))
    cols["quality"] = np.full(count, np.nan)
    return cols


def _derived(rng, prim: _Columns, *, role: str, mask: np.ndarray, offset: int) -> _Columns:
    """Triage, escalation or shadow calls tied to the primaries selected by `mask`."""
    idx = np.nonzero(mask)[0]
    count = len(idx)
    feat = prim["feat"][idx]
    if role == "triage":
        model = np.full(count, "gemini-2.5-flash-lite", dtype=object)
        seconds = prim["seconds"][idx] - rng.uniform(0.2, 0.6, count)
        input_tokens = np.maximum(50, _lognormal(rng, np.full(count, 450.0), 0.3)).astype(int)
        output_tokens = rng.integers(2, 12, count)
        cap, reason = np.full(count, 16), np.full(count, "", dtype=object)
    else:
        model = np.array([f.pro_model for f in FEATURES], dtype=object)[feat]
        seconds = prim["seconds"][idx] + rng.uniform(1.0, 6.0, count)
        input_tokens = prim["input_tokens"][idx]
        out_mean = np.array([f.output_mean for f in FEATURES])[feat] * 1.3
        output_tokens = np.maximum(1, _lognormal(rng, out_mean, 0.5)).astype(int)
        cap = prim["cap"][idx]
        output_tokens = np.where(cap > 0, np.minimum(output_tokens, np.where(cap > 0, cap, 1)), output_tokens)
        reason = np.full(count, "low_confidence" if role == "escalation" else "shadow", dtype=object)
    hit = (cap > 0) & (output_tokens >= cap)
    cols = _Columns(
        index=np.arange(offset, offset + count), seconds=seconds, feat=feat, model=model,
        is_pro=np.full(count, role != "triage"), role=np.full(count, role, dtype=object), route_reason=reason,
        input_tokens=input_tokens, output_tokens=output_tokens, cap=cap,
        finish=np.where(hit, "length", "stop").astype(object), status=np.full(count, "ok", dtype=object),
        request=prim["request"][idx], parent=np.full(count, -1) if role == "triage" else prim["index"][idx],
        confidence=np.full(count, np.nan), quality=np.full(count, np.nan),
    )
    if role == "escalation":  # escalations follow low-confidence Lite answers
        prim["confidence"][idx] = rng.uniform(0.2, 0.55, count)
    if role == "shadow":  # paired quality: Lite as good (gap 0) or worse by the feature's quality_gap
        pro_quality = np.clip(rng.normal(0.86, 0.07, count), 0, 1)
        gap = np.array([f.quality_gap for f in FEATURES])[feat]
        prim["quality"][idx] = np.clip(pro_quality + gap + rng.normal(0.0, 0.04, count), 0, 1)
        cols["quality"] = pro_quality
    return cols


def _concat(parts: list[_Columns]) -> _Columns:
    return _Columns({key: np.concatenate([p[key] for p in parts]) for key in parts[0]})


def generate_columns(*, events: int, days: int = 90, end: dt.datetime, seed: int = 7, offset: int = 0) -> _Columns:
    """About `events` rows (primaries plus their triage/escalation/shadow calls) over `days` before `end`."""
    rng = np.random.default_rng(seed)
    weights = np.array([f.weight for f in FEATURES])
    extra = np.array([(1 if f.triage else 0) + f.escalation_rate + f.shadow_rate for f in FEATURES])
    primaries = max(1, int(events / (1 + float((weights * extra).sum() / weights.sum()))))
    start = end - dt.timedelta(days=days)
    prim = _primaries(rng, primaries, start=start, days=days, seed=seed, offset=offset)
    lite_primary = ~prim["is_pro"] & (prim["status"] == "ok")
    triage_on = np.array([f.triage for f in FEATURES])[prim["feat"]]
    esc_rate = np.array([f.escalation_rate for f in FEATURES])[prim["feat"]]
    shadow_rate = np.array([f.shadow_rate for f in FEATURES])[prim["feat"]]
    draw = rng.random(primaries)
    next_offset = offset + primaries
    parts = [prim]
    for role, mask in (("triage", triage_on),
                       ("escalation", lite_primary & (draw < esc_rate)),
                       ("shadow", lite_primary & (draw >= esc_rate) & (draw < esc_rate + shadow_rate))):
        part = _derived(rng, prim, role=role, mask=mask, offset=next_offset)
        next_offset += len(part["index"])
        parts.append(part)
    cols = _concat(parts)
    cols["seconds"] = np.clip(cols["seconds"], 0, days * 86400.0 - 1)
    cols["start"] = start
    return cols


def _latency(rng, cols: _Columns) -> tuple[np.ndarray, np.ndarray]:
    per_token = np.where(cols["is_pro"], 5.0, 2.0)
    base = np.where(cols["is_pro"], 700.0, 220.0)
    latency = (base + per_token * cols["output_tokens"] + cols["input_tokens"] * 0.02) * rng.lognormal(0, 0.25,
                                                                                                     len(per_token))
    ttft = base * rng.lognormal(0, 0.35, len(per_token)) + cols["input_tokens"] * 0.015
    return latency.astype(int), ttft.astype(int)


def rows_from_columns(cols: _Columns, *, seed: int = 7, prefix: str = "demo") -> list[dict]:
    """Event rows (Event column names, `feature` as its name) from generated columns."""
    rng = np.random.default_rng(seed + 1)
    count = len(cols["index"])
    latency, ttft = _latency(rng, cols)
    weights = 1.0 / np.arange(1, len(CUSTOMERS) + 1) ** 1.2  # a few big customers, a long tail
    customer = np.array(CUSTOMERS, dtype=object)[rng.choice(len(CUSTOMERS), size=count, p=weights / weights.sum())]
    environment = np.where(rng.random(count) < 0.08, "staging", "production")
    cached = (cols["input_tokens"] * np.where(rng.random(count) < 0.3, 0.5, 0.0)).astype(int)
    start = cols["start"]
    names = [f.name for f in FEATURES]
    caps = cols["cap"].tolist()
    parents, requests = cols["parent"].tolist(), cols["request"].tolist()
    confidence, quality = cols["confidence"].tolist(), cols["quality"].tolist()
    rows = []
    for i, (index, seconds, feat, model) in enumerate(zip(cols["index"].tolist(), cols["seconds"].tolist(),
                                                          cols["feat"].tolist(), cols["model"].tolist(), strict=True)):
        error = cols["status"][i] == "error"
        rows.append({
            "event_id": f"{prefix}-{seed}-{index}",
            "ts": start + dt.timedelta(seconds=seconds),
            "feature": names[feat], "environment": str(environment[i]), "model": model,
            "provider": PROVIDERS[model], "role": cols["role"][i], "status": cols["status"][i],
            "service_tier": "standard", "input_tokens": int(cols["input_tokens"][i]),
            "cached_input_tokens": int(cached[i]), "cache_write_input_tokens": 0,
            "output_tokens": int(cols["output_tokens"][i]), "reasoning_tokens": 0,
            "max_output_tokens": caps[i] or None, "cap_known": True, "finish_reason": cols["finish"][i],
            "latency_ms": int(latency[i]), "ttft_ms": None if error else int(ttft[i]),
            "request_id": f"{prefix}-req-{seed}-{requests[i]}",
            "parent_event_id": f"{prefix}-{seed}-{parents[i]}" if parents[i] >= 0 else "",
            "route_reason": cols["route_reason"][i],
            "confidence": None if confidence[i] != confidence[i] else round(confidence[i], 3),
            "quality": None if quality[i] != quality[i] else round(quality[i], 3),
            "client_tier": "", "client_cost_usd": None,
            "attributes": {"customer": customer[i], "plan": PLANS[customer[i]]},
        })
    return rows


def late_scores_hold(rows: list[dict], *, since: dt.datetime) -> list[dict]:
    """Take the quality off the shadow calls from `since` on and return them as scores to send later
    through the scores service (the judge's scores arrive after the calls)."""
    scores = []
    for row in rows:
        if row["role"] == "shadow" and row["quality"] is not None and row["ts"] >= since:
            scores.append({"event_id": row["event_id"], "quality": row["quality"], "source": "demo-judge"})
            row["quality"] = None
    return scores


def generate_batches(*, events: int, days: int = 90, end: dt.datetime, seed: int = 7, batch_size: int = 50_000,
                     chunk_events: int = 500_000, prefix: str = "demo"):
    """Yield lists of rows, `events` in total, generated `chunk_events` at a time (for 10M-event benches)."""
    chunk = 0
    remaining = events
    while remaining > 0:
        size = min(chunk_events, remaining)
        cols = generate_columns(events=size, days=days, end=end, seed=seed + chunk)
        rows = rows_from_columns(cols, seed=seed + chunk, prefix=f"{prefix}{chunk}")
        for start in range(0, len(rows), batch_size):
            yield rows[start:start + batch_size]
        remaining -= size
        chunk += 1


# --- the demo's prices: overrides on the demo project, added through the price service ----------------

PRICES_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
DEMO_NOTE = "demo price"


def demo_prices_ensure(*, project) -> int:
    """Overrides on the demo `project` for the demo models that no price covers, added through the
    price service like any other price (validated and audited). Never a global row: the demo must
    not change what other projects' calls cost (an exact id would beat the catalogue's globs)."""
    book = PriceBook.load(project=project, models=None)
    created = 0
    for values in demo_prices():
        found = book.match(model=values["model"], provider=values["provider"], service_tier="standard",
                           ts=PRICES_FROM)
        if found.price is None:
            price_create(project=project, values={**values, "effective_from": PRICES_FROM, "note": DEMO_NOTE},
                         actor_label="seed_demo", queue_recompute=False)
            created += 1
    return created


def demo_global_prices_remove() -> int:
    """Delete the global rows an earlier seed_demo added (exact ids that beat the catalogue's globs,
    with wrong cached-input rates); the calls they priced are re-priced in the background."""
    removed = 0
    for price in Price.objects.filter(project__isnull=True, created_by="seed_demo", note=DEMO_NOTE):
        price_delete(price=price, actor_label="seed_demo")
        removed += 1
    return removed


def demo_customer_budget_ensure(*, project, now=None):
    """A budget on each customer ({"customer": "*"}) this month that exactly one customer is over:
    halfway between the biggest customer's month-to-date production spend and the next one's.
    Returns (the rule or None when there is one already or too little spend, that customer)."""
    if "customer" not in (project.dimensions or []) or Rule.objects.filter(
            project=project, kind="spend_budget", dimension={"customer": "*"}).exists():
        return None, None
    today = (now or timezone.now()).astimezone(project.tzinfo).date()
    spend = list(DimensionDay.objects.filter(project=project, dimension="customer", environment="production",
                                             day__gte=today.replace(day=1), day__lte=today)
                 .values("value").annotate(cost=Sum("cost_usd")).order_by("-cost", "value")
                 .values_list("value", "cost")[:2])
    if len(spend) < 2 or not spend[1][1] or spend[0][1] <= spend[1][1]:
        return None, None
    amount = ((spend[0][1] + spend[1][1]) / 2).quantize(Decimal("0.000001"))
    params, _errors = params_clean("spend_budget", {"period": "month", "amount_usd": str(amount)})
    rule = rule_create(project=project, data={"kind": "spend_budget", "dimension": {"customer": "*"},
                                              "params": params}, actor_label="seed_demo")
    return rule, spend[0][0]

"""The features list (sortable, capped, with a streamed CSV of every column of every feature)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from costwatch.metrics import selectors
from costwatch.pagelists import csv_response, page_list, wants_csv

from .. import charts
from .common import _csv_filename, _page_context

# The Features table: (key, label, kind). Every key sorts; the CSV has all of FEATURE_CSV_COLUMNS.
FEATURE_COLUMNS = [
    ("cost_usd", "Cost", "money"), ("calls", "Calls", "int"), ("cost_per_call_usd", "Cost / call", "unit_money"),
    ("pro_share", "Pro share", "share"), ("pro_share_change", "Pro Δ 7d", "change"),
    ("uncapped_share", "Uncapped", "share"), ("cap_hit_share", "Cap hit", "share"),
    ("output_tokens_per_call", "Out tok / call", "float"), ("escalation_rate", "Escalation", "share"),
    ("latency_p95_ms", "p95 latency", "ms"), ("unpriced_calls", "Unpriced", "int"), ("error_calls", "Errors", "int"),
]


FEATURE_CSV_COLUMNS = [
    "feature", "calls", "requests", "input_tokens", "output_tokens", "cost_usd", "cost_per_call_usd", "pro_share",
    "pro_share_change", "uncapped_share", "cap_hit_share", "output_tokens_per_call", "escalation_rate",
    "triage_cost_usd", "escalation_cost_usd", "shadow_cost_usd", "latency_p50_ms", "latency_p95_ms",
    "ttft_p50_ms", "ttft_p95_ms", "unpriced_calls", "error_calls", "muted", "expected_pro_share",
]


SORT_KEYS = {"feature"} | {key for key, _, _ in FEATURE_COLUMNS}


def _sorted_rows(rows, sort: str):
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    if key == "feature":
        return sorted(rows, key=lambda r: r["feature"], reverse=descending)
    by_name = sorted(rows, key=lambda r: r["feature"])  # ties stay alphabetical either way (stable sort)
    present = sorted((r for r in by_name if r.get(key) is not None), key=lambda r: r[key], reverse=descending)
    return present + [r for r in by_name if r.get(key) is None]  # nulls last


@login_required
def features(request, slug):
    ctx = _page_context(request, slug, "features", title="Features")
    project, params = ctx["project"], ctx["params"]
    rows = selectors.feature_metrics(project=project, **params.window())
    sort = request.GET.get("sort") or "-cost_usd"
    if sort.lstrip("-") not in SORT_KEYS:
        sort = "-cost_usd"
    rows = _sorted_rows(rows, sort)
    if wants_csv(request):
        return csv_response(filename=_csv_filename(ctx, "features"), columns=FEATURE_CSV_COLUMNS, rows=rows)
    shown = page_list(request, rows)
    rows = shown.rows  # sparklines only for the rows shown
    days = charts.day_range(ctx["first_day"], ctx["last_day"])
    daily = selectors.feature_daily_costs(project=project, **params.window())
    ids = dict(project.features.values_list("name", "pk"))
    for row in rows:
        by_day = daily.get(ids.get(row["feature"]), {})
        row["sparkline"] = charts.sparkline_svg([by_day.get(day) for day in days], width=96,
                                                label=f"daily cost of {row['feature']}")
        row["cells"] = [(row.get(key), kind) for key, _, kind in FEATURE_COLUMNS]
    headers = [(key, label, kind, _sort_link(sort, key)) for key, label, kind in FEATURE_COLUMNS]
    ctx.update(rows=rows, features=shown, sort=sort, headers=headers, feature_sort=_sort_link(sort, "feature"))
    return render(request, "dashboard/features.html", ctx)


def _sort_link(current: str, key: str) -> dict:
    """Clicking a header sorts by it, descending first (biggest numbers on top); again flips it."""
    active = current.lstrip("-") == key
    descending = current.startswith("-")
    target = (key if descending else f"-{key}") if active else (key if key == "feature" else f"-{key}")
    return {"value": target, "active": active, "arrow": ("▼" if descending else "▲") if active else ""}

"""The Savings page (docs/savings.md#the-savings-page): the moves of GET /api/v1/recommendations,
ranked by dollars, with their evidence; features without pairs under "no evidence yet"; a
`window` picker (the API's parameter, same values and default)."""

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from costwatch.metrics.params import _choice
from costwatch.metrics.selectors.recommendations import (
    DEFAULT_WINDOW,
    HOW_TO_SHADOW,
    WINDOWS,
    recommendations,
)
from costwatch.pagelists import csv_response, page_list, wants_csv

from .common import _page_context


@login_required
def savings_page(request, slug):
    ctx = _page_context(request, slug, "savings", title="Savings")
    errors: list[dict] = []
    window = _choice(request.GET, "window", list(WINDOWS), errors, default=DEFAULT_WINDOW) or DEFAULT_WINDOW
    moves = recommendations(project=ctx["project"], window=window)
    if wants_csv(request):
        return csv_response(filename=f"{slug}-savings-{window}.csv", columns=SAVINGS_CSV_COLUMNS, rows=moves,
                            values=_move_cells)
    ranked, no_evidence = [], []
    for move in moves:
        unshadowed = move["move"] != "cap_output" and move["evidence"]["pairs"] == 0
        (no_evidence if unshadowed else ranked).append(move)
    ranked_list, no_evidence_list = page_list(request, ranked), page_list(request, no_evidence)
    ctx.update(ranked=ranked_list.rows, no_evidence=no_evidence_list.rows, ranked_list=ranked_list,
               no_evidence_list=no_evidence_list, how_to=HOW_TO_SHADOW, windows=list(WINDOWS), window=window,
               window_days=f"{WINDOWS[window] / dt.timedelta(days=1):g}", window_error=errors[0] if errors else None)
    return render(request, "dashboard/savings.html", ctx)


SAVINGS_CSV_COLUMNS = ["feature", "move", "status", "monthly_savings_usd", "target_pro_share", "route_reason",
                       "cap_tokens", "pairs", "mean_diff", "ci_low", "ci_high", "lite_at_least_as_good_share",
                       "message"]


def _move_cells(move) -> list:
    evidence = move["evidence"]
    return [move.get(column, evidence.get(column)) for column in SAVINGS_CSV_COLUMNS]

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

from .common import _page_context


@login_required
def savings_page(request, slug):
    ctx = _page_context(request, slug, "savings", title="Savings")
    errors: list[dict] = []
    window = _choice(request.GET, "window", list(WINDOWS), errors, default=DEFAULT_WINDOW) or DEFAULT_WINDOW
    moves = recommendations(project=ctx["project"], window=window)
    ranked, no_evidence = [], []
    for move in moves:
        unshadowed = move["move"] != "cap_output" and move["evidence"]["pairs"] == 0
        (no_evidence if unshadowed else ranked).append(move)
    ctx.update(ranked=ranked, no_evidence=no_evidence, how_to=HOW_TO_SHADOW, windows=list(WINDOWS), window=window,
               window_days=f"{WINDOWS[window] / dt.timedelta(days=1):g}", window_error=errors[0] if errors else None)
    return render(request, "dashboard/savings.html", ctx)

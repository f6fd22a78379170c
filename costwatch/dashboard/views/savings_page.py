"""The Savings page (docs/savings.md#the-savings-page): the moves of GET /api/v1/recommendations,
ranked by dollars, with their evidence; features without pairs under "no evidence yet"."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from costwatch.metrics.selectors.recommendations import HOW_TO_SHADOW, recommendations

from .common import _page_context


@login_required
def savings_page(request, slug):
    ctx = _page_context(request, slug, "savings", title="Savings")
    moves = recommendations(project=ctx["project"])
    no_evidence = [m for m in moves if m["move"] != "cap_output" and m["evidence"]["pairs"] == 0]
    ranked = [m for m in moves if m not in no_evidence]
    ctx.update(ranked=ranked, no_evidence=no_evidence, how_to=HOW_TO_SHADOW)
    return render(request, "dashboard/savings.html", ctx)

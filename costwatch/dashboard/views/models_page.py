"""The models page (the costliest models, all of them as CSV)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from costwatch.metrics import selectors
from costwatch.pagelists import csv_response, page_list, wants_csv

from .common import _csv_filename, _page_context


@login_required
def models_page(request, slug):
    ctx = _page_context(request, slug, "models", title="Models")
    project, params = ctx["project"], ctx["params"]
    rows = selectors.model_metrics(project=project, **params.window())
    if wants_csv(request):
        return csv_response(filename=_csv_filename(ctx, "models"), columns=MODEL_CSV_COLUMNS, rows=rows)
    unpriced = [r for r in rows if r["unpriced_calls"]]
    models = page_list(request, rows)
    ctx.update(models=models, rows=models.rows, unpriced=unpriced[:UNPRICED_HINT_MODELS],
               unpriced_count=len(unpriced), unpriced_more=max(0, len(unpriced) - UNPRICED_HINT_MODELS))
    return render(request, "dashboard/models.html", ctx)


UNPRICED_HINT_MODELS = 20


MODEL_CSV_COLUMNS = ["model", "tier", "price_source", "calls", "input_tokens", "output_tokens", "cost_usd",
                     "unpriced_calls"]

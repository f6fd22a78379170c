"""The models page (the costliest models, all of them as CSV)."""

import csv
from itertools import chain

from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from costwatch.metrics import selectors

from .common import _csv_value, _page_context


@login_required
def models_page(request, slug):
    ctx = _page_context(request, slug, "models", title="Models")
    project, params = ctx["project"], ctx["params"]
    rows = selectors.model_metrics(project=project, start=params.start, end=params.end,
                                   environment=params.environment)
    if request.GET.get("format") == "csv":
        return _models_csv(project, rows, ctx["first_day"], ctx["last_day"])
    unpriced = [r for r in rows if r["unpriced_calls"]]
    ctx.update(rows=rows[:MODELS_PAGE_ROWS], more_rows=max(0, len(rows) - MODELS_PAGE_ROWS),
               unpriced=unpriced[:UNPRICED_HINT_MODELS], unpriced_count=len(unpriced),
               unpriced_more=max(0, len(unpriced) - UNPRICED_HINT_MODELS),
               csv_query=urlencode({**request.GET.dict(), "format": "csv"}))
    return render(request, "dashboard/models.html", ctx)


# A page shows a bounded list; "show all" is the CSV, streamed row by row.
MODELS_PAGE_ROWS = 200


UNPRICED_HINT_MODELS = 20


MODEL_CSV_COLUMNS = ["model", "tier", "price_source", "calls", "input_tokens", "output_tokens", "cost_usd",
                     "unpriced_calls"]


def _models_csv(project, rows, first, last) -> StreamingHttpResponse:
    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())
    lines = (writer.writerow([_csv_value(row.get(column)) for column in MODEL_CSV_COLUMNS]) for row in rows)
    response = StreamingHttpResponse(chain([writer.writerow(MODEL_CSV_COLUMNS)], lines),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-models-{first}-{last}.csv"'
    return response

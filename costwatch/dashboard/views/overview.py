"""The overview page."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from budgets.selectors import open_alerts
from costwatch.metrics import selectors

from .. import charts
from .common import _breakdowns, _page_context


def _open_alerts(project):
    return list(open_alerts(project=project)[:10])


@login_required
def overview(request, slug):
    ctx = _page_context(request, slug, "overview", title="Overview")
    project, params = ctx["project"], ctx["params"]
    ov = selectors.overview(project=project, environment=params.environment)
    change = None
    if ov["forecast_usd"] is not None and ov["last_month_usd"]:
        change = (ov["forecast_usd"] - ov["last_month_usd"]) / ov["last_month_usd"]
    points = selectors.timeseries(project=project, metric="cost", granularity="day", start=params.start,
                                  end=params.end, environment=params.environment, group_by="tier")
    unknown_share = None
    if ov["pro_share"] is not None and ov["lite_share"] is not None:
        unknown_share = max(0.0, 1 - ov["pro_share"] - ov["lite_share"])
    ctx.update(ov=ov, forecast_change=change, unknown_share=unknown_share, breakdowns=_breakdowns(project, params), open_alerts=_open_alerts(project),
               cost_figure=charts.cost_by_group_figure(points))
    return render(request, "dashboard/overview.html", ctx)

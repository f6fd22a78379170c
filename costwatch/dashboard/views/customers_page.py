"""The Customers page: month to date per value of the first declared dimension (the end customer)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from budgets.services import value_budget_levels
from costwatch.metrics import selectors

from .common import _page_context


@login_required
def customers_page(request, slug):
    """Cost this month with its forecast, Pro share and budget level per value; `?q=` searches them."""
    ctx = _page_context(request, slug, "customers", title="Customers")
    project = ctx["project"]
    dimension = (project.dimensions or [None])[0]
    search = (request.GET.get("q") or "").strip()[:200]
    ctx.update(dimension=dimension, search=search)
    if dimension:
        month = selectors.dimension_values_month(project=project, dimension=dimension, search=search)
        levels = value_budget_levels(project=project, dimension=dimension,
                                     values=[row["value"] for row in month["values"]])
        for row in month["values"]:
            row["budget"] = levels.get(row["value"])
        ctx.update(month_start=month["month_start"], values=month["values"], value_count=month["value_count"])
    return render(request, "dashboard/customers.html", ctx)

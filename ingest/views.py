"""The Prices page `/p/<slug>/prices/`: prices in effect, unpriced models, and adding a price
with a preview (events and dollars before/after) before it is saved and the recompute queued."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from costwatch.pagelists import csv_response, page_list, wants_csv
from costwatch.projects.selectors import project_for_user, user_is_project_admin

from .catalogue import price_create, price_preview
from .forms import PriceForm
from .models import SeenModel
from .pricing import PriceBook
from .seed import seed_source
from .selectors import catalogue_refresh_status, prices_in_effect, recomputes_recent


def _permissions(user, project):
    return {"can_edit_override": user_is_project_admin(user=user, project=project),
            "can_edit_global": bool(user.is_staff)}


def _unpriced_models(project):
    models = list(SeenModel.objects.filter(project=project).values_list("model", flat=True))
    book = PriceBook.load(project=project, models=set(models))
    now = timezone.now()
    return sorted(m for m in models if book.match(model=m, provider="", service_tier="standard", ts=now).price is None)


def _render(request, project, form=None, preview=None, status=200):
    permissions = _permissions(request.user, project)
    if form is None and (permissions["can_edit_override"] or permissions["can_edit_global"]):
        form = PriceForm(**permissions, initial={"model": request.GET.get("model", "")[:200]})  # "add a price" links
    prices = _prices(project)
    unpriced = _unpriced_models(project)
    context = {
        "project": project, "nav": "prices", "form": form, "preview": preview, **permissions,
        **{name: page_list(request, prices.filter(project__isnull=name == "catalogue"), name=name,
                           path=reverse("ingest:prices", args=[project.slug])) for name in PRICE_LISTS},
        "unpriced_models": unpriced[:UNPRICED_HINT_MODELS], "unpriced_more": len(unpriced) - UNPRICED_HINT_MODELS,
        "recomputes": recomputes_recent(project=project),
        "seed_source": seed_source(), "prices_source": settings.PRICES_SOURCE, **catalogue_refresh_status(),
    }
    return render(request, "ingest/prices.html", context, status=status)


UNPRICED_HINT_MODELS = 50  # the Models page lists them all, with their calls
PRICE_LISTS = ("overrides", "catalogue")  # the project's own prices, then the global ones
PRICE_CSV_COLUMNS = ["scope", "model", "provider", "service_tier", "tier", "input_per_mtok", "cached_input_per_mtok",
                     "cache_write_input_per_mtok", "output_per_mtok", "reasoning_output_per_mtok",
                     "long_context_threshold", "long_context_input_per_mtok", "long_context_cached_input_per_mtok",
                     "long_context_output_per_mtok", "effective_from"]


def _prices(project):
    return prices_in_effect(project=project).select_related("project").order_by("project", "model", "provider",
                                                                               "service_tier")


def _price_cells(price) -> list:
    return ["override" if price.project_id else "global",
            *(getattr(price, column) for column in PRICE_CSV_COLUMNS[1:])]


@login_required
def prices_page(request, slug):
    project = project_for_user(user=request.user, slug=slug)
    for name in PRICE_LISTS:
        if wants_csv(request, name):
            prices = _prices(project).filter(project__isnull=name == "catalogue")
            return csv_response(filename=f"{project.slug}-prices-{name}.csv", columns=PRICE_CSV_COLUMNS,
                                rows=prices, values=_price_cells)
    return _render(request, project)


def _bound_form(request, project):
    """The posted form, checked against what this user may edit; None when they may edit nothing."""
    permissions = _permissions(request.user, project)
    if not (permissions["can_edit_override"] or permissions["can_edit_global"]):
        return None
    form = PriceForm(request.POST, **permissions)
    return form


def _form_errors(form, exc: ValidationError):
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
@require_POST
def price_add(request, slug):
    """Step 1 (`confirm` absent): preview. Step 2 (`confirm=1`): save and queue the recompute."""
    project = project_for_user(user=request.user, slug=slug)
    form = _bound_form(request, project)
    if form is None:
        return redirect("ingest:prices", slug=slug)
    if not form.is_valid():
        return _render(request, project, form=form, status=400)
    scope_project = project if form.cleaned_data["scope"] == "override" else None
    values = form.price_values()
    try:
        if request.POST.get("confirm") != "1":
            return _render(request, project, form=form, preview=price_preview(project=scope_project, values=values))
        change = price_create(project=scope_project, values=values, actor=request.user)
    except ValidationError as exc:
        _form_errors(form, exc)
        return _render(request, project, form=form, status=400)
    queued = f"; re-pricing {len(change.recompute.models_matched)} model(s) queued" if change.recompute else ""
    messages.success(request, f"Price for {change.price.model} saved{queued}.")
    return redirect("ingest:prices", slug=slug)



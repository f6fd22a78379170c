"""The Prices page `/p/<slug>/prices/`: prices in effect, unpriced models, and adding a price
with a preview (events and dollars before/after) before it is saved and the recompute queued."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

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
    prices = prices_in_effect(project=project).select_related("project").order_by("project", "model", "provider",
                                                                                   "service_tier")
    context = {
        "project": project, "nav": "prices", "form": form, "preview": preview, **permissions,
        "overrides": [p for p in prices if p.project_id], "catalogue": [p for p in prices if not p.project_id],
        "unpriced_models": _unpriced_models(project), "recomputes": recomputes_recent(project=project),
        "seed_source": seed_source(), "prices_source": settings.PRICES_SOURCE, **catalogue_refresh_status(),
    }
    return render(request, "ingest/prices.html", context, status=status)


@login_required
def prices_page(request, slug):
    return _render(request, project_for_user(user=request.user, slug=slug))


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



"""One feature's page: charts, the KPI row, recent calls, the what-if panel and its settings.

The one exception to "rollups only" is its recent calls: the last 50 raw events of the
feature, read through the (project, feature, -ts) index.
"""

import datetime as dt
from decimal import Decimal

import pandas as pd
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from costwatch.metrics import buckets, selectors
from costwatch.metrics.definitions import ROUTED_ROLES, WINDOW_7D, WINDOW_28D
from costwatch.projects.selectors import project_for_user
from ingest.features import feature_settings_update
from ingest.models import Event, Feature

from .. import charts, whatif
from ..forms import FeatureSettingsForm, WhatIfForm
from .common import _breakdowns, _page_context

BASELINE_DAYS, RECENT_DAYS = WINDOW_28D.days, WINDOW_7D.days


@login_required
def feature_detail(request, slug, name):
    ctx = _page_context(request, slug, "features")
    project, params = ctx["project"], ctx["params"]
    feature = Feature.objects.filter(project=project, name=name).first()
    if feature is None:  # the project's own page, not Django's debug 404 with the URL list
        return render(request, "dashboard/feature_missing.html", {**ctx, "name": name}, status=404)
    if request.method == "POST":
        return _feature_settings_post(request, project, feature)
    first, last = ctx["first_day"], ctx["last_day"]
    frame = selectors.feature_daily(project=project, feature=feature, start=params.start, end=params.end,
                                    environment=params.environment)
    days = charts.day_range(first, last)
    # One narrow read of calls per (day, tier, role) from the baseline's first day to the range's end,
    # for the Pro-share chart.
    history_first = first - dt.timedelta(days=BASELINE_DAYS + RECENT_DAYS)
    calls = selectors.feature_daily_calls(project=project, feature=feature, first_day=history_first, end=params.end,
                                          environment=params.environment)
    counts = pd.DataFrame([row for row in calls if row[2] in ROUTED_ROLES],
                          columns=["day", "tier", "role", "calls"])
    share = charts.pro_share_series(counts, charts.day_range(history_first, last)).loc[days]
    figures = {
        "cost": charts.feature_cost_figure(frame, days),
        "pro_share": charts.pro_share_figure(share, expected=feature.expected_pro_share),
        "output": charts.output_tokens_figure(frame, days),
        "latency": charts.latency_figure(frame, days),
        "rates": charts.rates_figure(frame, days),
    }
    # pro_share_change over the hour-exact 7 and 28 days before the window's end, as the read API has it.
    change = selectors.pro_share_changes(project, params.end, params.environment, feature_id=feature.pk)
    metrics = selectors.feature_metrics_from_daily(feature=feature, frame=frame,
                                                   pro_share_change=change.get(feature.pk))
    ctx.update(
        feature=feature, metrics=metrics, figures=figures,
        recent_calls=_recent_calls(project, feature, params.environment),
        settings_form=FeatureSettingsForm(initial={
            "expected_pro_share": None if feature.expected_pro_share is None
            else round(Decimal(str(feature.expected_pro_share)) * 100, 2),
            "muted": feature.muted}),
        **_whatif_context(request, project, feature, frame, params, metrics),
        breakdowns=_breakdowns(project, params, feature=feature),
        first_call_day=selectors.feature_first_day(project=project, feature=feature),
    )
    return render(request, "dashboard/feature.html", ctx)


def _recent_calls(project, feature, environment):
    """The one raw-event read: the last 50 calls of a feature, index (project, feature, -ts)."""
    calls = Event.objects.filter(project=project, feature=feature)
    if environment:
        calls = calls.filter(environment=environment)
    # Named rows, not model instances: building 50 deferred-field Events costs more than the query.
    return list(calls.order_by("-ts").values_list(
        "event_id", "ts", "environment", "model", "tier", "role", "status", "input_tokens", "output_tokens",
        "max_output_tokens", "cap_known", "finish_reason", "latency_ms", "route_reason", "cost_usd", named=True)[:50])


def _whatif_context(request, project, feature, frame, params, metrics):
    form = WhatIfForm(request.GET or None)
    values = form.cleaned_data if form.is_bound and form.is_valid() else {}
    current_share = metrics.get("pro_share")
    pro_share = values.get("pro_share")
    if pro_share is None:
        pro_share = Decimal(round((current_share or 0) * 50))  # default: halve today's Pro share
    hist = selectors.hist_sum(frame["output_tokens_hist"]) if not frame.empty else []
    cap = values.get("cap") or int(round(buckets.quantile(hist, 0.9) or 512))
    prices = whatif.output_prices_by_tier(project=project, feature=feature, start=params.start, end=params.end,
                                          environment=params.environment)
    return {
        "whatif_form": form, "whatif_pro_share": pro_share, "whatif_cap": cap,
        "whatif_share": whatif.pro_share_whatif(frame, pro_share=float(pro_share) / 100),
        "whatif_capped": whatif.output_cap_whatif(frame, cap=cap, output_prices=prices),
        "whatif_capped_share": buckets.share_at_most(hist, cap),
    }


def _feature_settings_post(request, project, feature):
    project_for_user(user=request.user, slug=project.slug, admin=True)  # viewers: 404, like other admin actions
    form = FeatureSettingsForm(request.POST)
    url = reverse("dashboard:feature", kwargs={"slug": project.slug, "name": feature.name})
    if not form.is_valid():
        messages.error(request, "; ".join(f"{f}: {' '.join(e)}" for f, e in form.errors.items()))
        return redirect(url)
    changes = {"expected_pro_share": form.cleaned_share(), "muted": form.cleaned_data["muted"]}
    if changes != {"expected_pro_share": feature.expected_pro_share, "muted": feature.muted}:
        feature_settings_update(feature=feature, changes=changes, actor=request.user)
        messages.success(request, f"Settings of {feature.name} saved.")
    return redirect(url)

"""Dashboard pages under /p/<slug>/: thin views over costwatch.metrics.selectors (rollups only).

The one exception to "rollups only" is the feature page's recent calls: the last 50 raw events of
one feature, read through the (project, feature, -ts) index.
"""

import csv
import datetime as dt
from decimal import Decimal
from itertools import chain

import pandas as pd
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from costwatch.metrics import buckets, selectors
from costwatch.metrics.definitions import ROUTED_ROLES, WINDOW_7D, WINDOW_28D, day_start
from costwatch.metrics.models import FeatureDay
from costwatch.metrics.params import ParamsInvalid, next_boundary, parse_read_params
from costwatch.metrics.windows import split
from costwatch.projects.models import AuditLog, Membership
from costwatch.projects.selectors import project_for_user, user_is_project_admin
from costwatch.projects.services import membership_set, project_settings_update
from ingest.features import feature_settings_update
from ingest.models import Event, Feature

from . import charts, whatif
from .forms import FeatureSettingsForm, MemberForm, ProjectSettingsForm, WhatIfForm
from .templatetags.costwatch_dashboard import freshness

BASELINE_DAYS, RECENT_DAYS = WINDOW_28D.days, WINDOW_7D.days

# The Features table: (key, label, kind). Every key sorts; the CSV has all of FEATURE_CSV_COLUMNS.
FEATURE_COLUMNS = [
    ("cost_usd", "Cost", "money"), ("calls", "Calls", "int"), ("cost_per_call_usd", "Cost / call", "unit_money"),
    ("pro_share", "Pro share", "share"), ("pro_share_change", "Pro Δ 7d", "change"),
    ("uncapped_share", "Uncapped", "share"), ("cap_hit_share", "Cap hit", "share"),
    ("output_tokens_per_call", "Out tok / call", "float"), ("escalation_rate", "Escalation", "share"),
    ("latency_p95_ms", "p95 latency", "ms"), ("unpriced_calls", "Unpriced", "int"), ("error_calls", "Errors", "int"),
]
FEATURE_CSV_COLUMNS = [
    "feature", "calls", "requests", "input_tokens", "output_tokens", "cost_usd", "cost_per_call_usd", "pro_share",
    "pro_share_change", "uncapped_share", "cap_hit_share", "output_tokens_per_call", "escalation_rate",
    "triage_cost_usd", "escalation_cost_usd", "shadow_cost_usd", "latency_p50_ms", "latency_p95_ms",
    "ttft_p50_ms", "ttft_p95_ms", "unpriced_calls", "error_calls", "muted", "expected_pro_share",
]
SORT_KEYS = {"feature"} | {key for key, _, _ in FEATURE_COLUMNS}


def _page_context(request, slug, nav):
    """Project (404 unless a member), validated range/environment and freshness for every page."""
    project = project_for_user(user=request.user, slug=slug)
    try:
        params = parse_read_params(request.GET, project=project, daily=True, allow_attrs=False, naive_local=True)
        param_errors = []
    except ParamsInvalid as exc:
        params, param_errors = parse_read_params({}, project=project, daily=True), exc.errors
    tzinfo = project.tzinfo
    # Days the window touches (charts have one point per day; the edge days cover only its hours).
    first, last = selectors.local_days(project, params.start, params.end)
    start_local, end_local = params.start.astimezone(tzinfo), params.end.astimezone(tzinfo)
    has_data = project.features.exists()
    query = {k: v for k, v in (("start", request.GET.get("start")), ("end", request.GET.get("end")),
                                ("environment", params.environment)) if v and not param_errors}
    return {
        "project": project, "nav": nav, "params": params, "param_errors": param_errors,
        "first_day": first, "last_day": last, "end_inclusive": last - dt.timedelta(days=1),
        "start_input": start_local.strftime("%Y-%m-%dT%H:%M"), "end_input": end_local.strftime("%Y-%m-%dT%H:%M"),
        "range_label": f"{start_local:%b %-d, %H:%M} – {end_local:%b %-d, %Y %H:%M} (excl., {project.timezone})",
        "environments": selectors.environments(project=project), "environment": params.environment or "",
        **freshness(project), "has_data": has_data, "page_has_freshness": True,
        "is_admin": user_is_project_admin(user=request.user, project=project),
        "range_query": urlencode(query), "quick_ranges": _quick_ranges(project, params.environment),
        "site_url": request.build_absolute_uri("/").rstrip("/"),
    }


QUICK_RANGES = (("Last 24 h", dt.timedelta(hours=24)), ("7 d", dt.timedelta(days=7)),
                ("30 d", dt.timedelta(days=30)), ("90 d", dt.timedelta(days=90)))


def _quick_ranges(project, environment):
    """Presets ending at the start of the next hour, so the current hour is in (hour-exact windows)."""
    end = next_boundary(timezone.now(), "hour", project.tzinfo).astimezone(project.tzinfo)
    ranges = []
    for label, length in QUICK_RANGES:
        query = {"start": (end - length).strftime("%Y-%m-%dT%H:%M"), "end": end.strftime("%Y-%m-%dT%H:%M")}
        if environment:
            query["environment"] = environment
        ranges.append((label, urlencode(query)))
    return ranges


# --- overview -------------------------------------------------------------------------------

def _open_alerts(project):
    try:  # the Alerts app (budgets) is optional for this page: it works before it exists
        from budgets.selectors import open_alerts
    except ImportError:
        return None
    return list(open_alerts(project=project)[:10])


@login_required
def overview(request, slug):
    ctx = _page_context(request, slug, "overview")
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


def _breakdowns(project, params, feature=None, top=8):
    """Cost per value of each declared dimension (e.g. per end customer), one query. Dimensions are
    kept per day: over the whole project-timezone days inside the range, and the caption says which."""
    dimensions = project.dimensions or []
    window = split(project, params.start, params.end)
    if not window.has_days:
        return [{"dimension": dimension, "rows": [], "more": 0, "days": None} for dimension in dimensions]
    tzinfo = project.tzinfo
    start, end = day_start(window.first_day, tzinfo), day_start(window.last_day, tzinfo)
    by_dimension = selectors.dimension_breakdowns(project=project, dimensions=dimensions, start=start, end=end,
                                                  feature=feature, environment=params.environment)
    days = (window.first_day, window.last_day - dt.timedelta(days=1))
    return [{"dimension": dimension, "rows": by_dimension[dimension][:top], "days": days,
             "more": max(0, len(by_dimension[dimension]) - top)} for dimension in dimensions]


# --- features list ----------------------------------------------------------------------------

def _daily_costs_by_feature(project, first, last, environment) -> dict[int, dict]:
    rows = FeatureDay.objects.filter(project=project, day__gte=first, day__lt=last)
    if environment:
        rows = rows.filter(environment=environment)
    result: dict[int, dict] = {}
    for row in rows.values("feature_id", "day").annotate(cost=Sum("cost_usd")).order_by():
        result.setdefault(row["feature_id"], {})[row["day"]] = row["cost"]
    return result


def _sorted_rows(rows, sort: str):
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    if key == "feature":
        return sorted(rows, key=lambda r: r["feature"], reverse=descending)
    by_name = sorted(rows, key=lambda r: r["feature"])  # ties stay alphabetical either way (stable sort)
    present = sorted((r for r in by_name if r.get(key) is not None), key=lambda r: r[key], reverse=descending)
    return present + [r for r in by_name if r.get(key) is None]  # nulls last


def _csv_value(value):
    if isinstance(value, Decimal):
        return f"{value:.6f}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def _features_csv(project, rows, first, last) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-features-{first}-{last}.csv"'
    writer = csv.writer(response)
    writer.writerow(FEATURE_CSV_COLUMNS)
    for row in rows:
        writer.writerow([_csv_value(row.get(column)) for column in FEATURE_CSV_COLUMNS])
    return response


@login_required
def features(request, slug):
    ctx = _page_context(request, slug, "features")
    project, params = ctx["project"], ctx["params"]
    rows = selectors.feature_metrics(project=project, start=params.start, end=params.end,
                                     environment=params.environment)
    sort = request.GET.get("sort") or "-cost_usd"
    if sort.lstrip("-") not in SORT_KEYS:
        sort = "-cost_usd"
    rows = _sorted_rows(rows, sort)
    if request.GET.get("format") == "csv":
        return _features_csv(project, rows, ctx["first_day"], ctx["last_day"])
    days = charts.day_range(ctx["first_day"], ctx["last_day"])
    daily = _daily_costs_by_feature(project, ctx["first_day"], ctx["last_day"], params.environment)
    ids = dict(project.features.values_list("name", "pk"))
    for row in rows:
        by_day = daily.get(ids.get(row["feature"]), {})
        row["sparkline"] = charts.sparkline_svg([by_day.get(day) for day in days], width=96,
                                                label=f"daily cost of {row['feature']}")
        row["cells"] = [(row.get(key), kind) for key, _, kind in FEATURE_COLUMNS]
    headers = [(key, label, kind, _sort_link(sort, key)) for key, label, kind in FEATURE_COLUMNS]
    ctx.update(rows=rows, sort=sort, headers=headers, feature_sort=_sort_link(sort, "feature"),
               csv_query=urlencode({**request.GET.dict(), "format": "csv", "sort": sort}))
    return render(request, "dashboard/features.html", ctx)


def _sort_link(current: str, key: str) -> dict:
    """Clicking a header sorts by it, descending first (biggest numbers on top); again flips it."""
    active = current.lstrip("-") == key
    descending = current.startswith("-")
    target = (key if descending else f"-{key}") if active else (key if key == "feature" else f"-{key}")
    return {"value": target, "active": active, "arrow": ("▼" if descending else "▲") if active else ""}


# --- feature page -----------------------------------------------------------------------------

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
        **_whatif_context(request, project, feature, frame, first, last, params.environment, metrics),
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


def _whatif_context(request, project, feature, frame, first, last, environment, metrics):
    form = WhatIfForm(request.GET or None)
    values = form.cleaned_data if form.is_bound and form.is_valid() else {}
    current_share = metrics.get("pro_share")
    pro_share = values.get("pro_share")
    if pro_share is None:
        pro_share = Decimal(round((current_share or 0) * 50))  # default: halve today's Pro share
    hist = selectors.hist_sum(frame["output_tokens_hist"]) if not frame.empty else []
    cap = values.get("cap") or int(round(buckets.quantile(hist, 0.9) or 512))
    prices = whatif.output_prices_by_tier(project=project, feature=feature, first_day=first, last_day=last,
                                          environment=environment)
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


# --- models -----------------------------------------------------------------------------------

@login_required
def models_page(request, slug):
    ctx = _page_context(request, slug, "models")
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


# --- settings ---------------------------------------------------------------------------------

@login_required
def settings_page(request, slug):
    ctx = _page_context(request, slug, "settings")
    project = ctx["project"]
    initial = {"timezone": project.timezone, "dimensions": ", ".join(project.dimensions or []),
               "ingest_rate_limit": project.ingest_rate_limit, "huge_cap_tokens": project.huge_cap_tokens}
    settings_form, member_form = ProjectSettingsForm(initial=initial), MemberForm()
    if request.method == "POST":
        project_for_user(user=request.user, slug=slug, admin=True)  # viewers: 404
        if request.POST.get("action") == "member":
            member_form = MemberForm(request.POST)
            if member_form.is_valid() and _member_set(request, project, member_form):
                return redirect("dashboard:settings", slug=slug)
        else:
            settings_form = ProjectSettingsForm(request.POST)
            if settings_form.is_valid() and _settings_save(request, project, settings_form):
                return redirect("dashboard:settings", slug=slug)
    ctx.update(
        settings_form=settings_form, member_form=member_form,
        members=Membership.objects.filter(project=project).select_related("user").order_by("user__username"),
        audit_log=AuditLog.objects.filter(project=project).select_related("actor")[:100],
    )
    return render(request, "dashboard/settings.html", ctx)


def _settings_save(request, project, form) -> bool:
    try:
        changed = project_settings_update(project=project, values=form.cleaned_data, actor=request.user)
    except ValidationError as exc:
        form.add_error(None, exc)
        return False
    if not changed:
        messages.info(request, "Nothing changed.")
    elif set(changed) & {"huge_cap_tokens", "dimensions", "timezone"}:
        messages.success(request, f"Saved {', '.join(changed)}. Rollups are being rebuilt with the new settings; "
                                  "pages catch up within a few minutes.")
    else:
        messages.success(request, f"Saved {', '.join(changed)}.")
    return True


def _member_set(request, project, form) -> bool:
    user = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
    if user is None:
        form.add_error("username", "No user with that username: create the account first.")
        return False
    membership_set(project=project, user=user, role=form.cleaned_data["role"], actor=request.user)
    messages.success(request, f"{user.get_username()} is now {form.cleaned_data['role']} of {project.name}.")
    return True

"""What every dashboard page shares: its context (project, range, environment), quick ranges, breakdowns."""

import datetime as dt

from django.utils import timezone
from django.utils.http import urlencode

from costwatch.metrics import selectors
from costwatch.metrics.definitions import WINDOW_7D, WINDOW_24H, day_start
from costwatch.metrics.params import ParamsInvalid, next_boundary, parse_read_params
from costwatch.metrics.windows import split
from costwatch.projects.selectors import project_for_user, user_is_project_admin

from ..templatetags.costwatch_dashboard import freshness


def _page_context(request, slug, nav, *, title=None):
    """Project (404 unless a member), validated range/environment and freshness for every page;
    `title` names a page drawn by `dashboard/_ranged_page.html` or `dashboard/_page.html`."""
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
        "project": project, "nav": nav, "page_title": title, "params": params, "param_errors": param_errors,
        "first_day": first, "last_day": last, "end_inclusive": last - dt.timedelta(days=1),
        "start_input": start_local.strftime("%Y-%m-%dT%H:%M"), "end_input": end_local.strftime("%Y-%m-%dT%H:%M"),
        "range_label": f"{start_local:%b %-d, %H:%M} – {end_local:%b %-d, %Y %H:%M} (excl., {project.timezone})",
        "environments": selectors.environments(project=project), "environment": params.environment or "",
        **freshness(project), "has_data": has_data, "page_has_freshness": True,
        "is_admin": user_is_project_admin(user=request.user, project=project),
        "range_query": urlencode(query), "quick_ranges": _quick_ranges(project, params.environment),
        "site_url": request.build_absolute_uri("/").rstrip("/"),
    }


def _csv_filename(ctx, what: str) -> str:
    """<project>-<what>-<first day>-<last day>.csv, for a page's CSV download."""
    return f"{ctx['project'].slug}-{what}-{ctx['first_day']}-{ctx['last_day']}.csv"


QUICK_RANGES = (("Last 24 h", WINDOW_24H), ("7 d", WINDOW_7D),
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

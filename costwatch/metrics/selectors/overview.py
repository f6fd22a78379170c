"""The overview page's numbers, unpriced models, freshness and the environments seen."""

import calendar
import datetime as dt
from decimal import Decimal

from django.utils import timezone

from costwatch.dbrouting import read_connection

from ..definitions import WINDOW_7D, day_start
from ..models import RollupState
from .parts import ROUTED, _day_filter, _ratio


def _month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    first = day.replace(day=1)
    return first, first + dt.timedelta(days=calendar.monthrange(first.year, first.month)[1])


def overview(*, project, now=None, environment=None, top=5) -> dict:
    """Month-to-date spend and forecast vs last month, Lite/Pro share, top features, unpriced calls."""
    now = now or timezone.now()
    tzinfo = project.tzinfo
    today = now.astimezone(tzinfo).date()
    month_first, month_next = _month_bounds(today)
    last_first, _ = _month_bounds(month_first - dt.timedelta(days=1))
    # Change = the last 7 full days against the 7 before; today's partial day would make
    # every feature look cheaper in the morning.
    week_from, prev_week_from = today - WINDOW_7D, today - 2 * WINDOW_7D
    first = min(last_first, prev_week_from)
    where, params = _day_filter(project, first, today + dt.timedelta(days=1), environment)
    params.update(month_first=month_first, week_from=week_from)
    mtd = "d.day >= %(month_first)s"
    sql = f"""SELECT d.feature_id,
        sum(d.cost_usd) FILTER (WHERE {mtd}), sum(d.priced_calls) FILTER (WHERE {mtd}),
        sum(d.calls) FILTER (WHERE {mtd}), sum(d.unpriced_calls) FILTER (WHERE {mtd}),
        sum(d.calls) FILTER (WHERE {mtd} AND {ROUTED}),
        sum(d.calls) FILTER (WHERE {mtd} AND {ROUTED} AND d.tier = 'pro'),
        sum(d.calls) FILTER (WHERE {mtd} AND {ROUTED} AND d.tier = 'lite'),
        sum(d.cost_usd) FILTER (WHERE d.day < %(month_first)s AND d.day >= %(last_first)s),
        sum(d.priced_calls) FILTER (WHERE d.day < %(month_first)s AND d.day >= %(last_first)s),
        sum(d.cost_usd) FILTER (WHERE d.day >= %(week_from)s AND d.day < %(today)s),
        sum(d.cost_usd) FILTER (WHERE d.day < %(week_from)s AND d.day >= %(prev_week_from)s)
        FROM metrics_featureday d WHERE {where} GROUP BY 1"""
    params.update(last_first=last_first, prev_week_from=prev_week_from, today=today)
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    names = dict(project.features.values_list("pk", "name"))
    totals = [sum((row[i] or 0) for row in rows) for i in range(1, 12)]
    (spent, priced, calls, unpriced, routed, routed_pro, routed_lite, last_spent, last_priced, _w, _pw) = totals
    month_start_at = day_start(month_first, tzinfo)
    month_end_at = day_start(month_next, tzinfo)
    elapsed = Decimal((now - month_start_at).total_seconds())
    length = Decimal((month_end_at - month_start_at).total_seconds())
    spent_usd = Decimal(spent) if priced else None
    features = [{"feature": names.get(row[0], "?"), "cost_usd": row[1] if row[2] else None, "calls": int(row[3] or 0),
                 "week_cost_usd": Decimal(row[10] or 0), "previous_week_cost_usd": Decimal(row[11] or 0)}
                for row in rows]
    for feature in features:
        feature["change_usd"] = feature["week_cost_usd"] - feature["previous_week_cost_usd"]
    by_cost = sorted((f for f in features if f["cost_usd"]), key=lambda f: (-f["cost_usd"], f["feature"]))
    by_change = sorted((f for f in features if f["change_usd"]), key=lambda f: (-abs(f["change_usd"]), f["feature"]))
    return {
        "month_start": month_first,
        "spent_usd": spent_usd,
        "forecast_usd": spent_usd * length / elapsed if spent_usd is not None and elapsed > 0 else None,
        "last_month_usd": Decimal(last_spent) if last_priced else None,
        "calls": int(calls),
        "pro_share": _ratio(routed_pro, routed),
        "lite_share": _ratio(routed_lite, routed),
        "unpriced_calls": int(unpriced),
        "unpriced_models": unpriced_models(project=project, start_day=month_first, environment=environment),
        "top_by_cost": by_cost[:top],
        "top_by_change": by_change[:top],
        "data_as_of": data_as_of(project=project),
    }


def unpriced_models(*, project, start_day, environment=None) -> list[dict]:
    where, params = _day_filter(project, start_day, dt.date.max, environment)
    with read_connection().cursor() as cursor:
        cursor.execute(f"SELECT d.model, sum(d.unpriced_calls) FROM metrics_modelday d WHERE {where} "
                       "GROUP BY 1 HAVING sum(d.unpriced_calls) > 0 ORDER BY 2 DESC, 1", params)
        return [{"model": model, "unpriced_calls": int(count)} for model, count in cursor.fetchall()]


def data_as_of(*, project) -> dt.datetime | None:
    """When the rollups last caught up with every committed event of the project."""
    state = RollupState.objects.filter(project=project).only("refreshed_at").first()
    return state.refreshed_at if state else None


def environments(*, project) -> list[str]:
    with read_connection().cursor() as cursor:
        cursor.execute("SELECT DISTINCT environment FROM metrics_featureday WHERE project_id = %s ORDER BY 1",
                       [project.pk])
        return [row[0] for row in cursor.fetchall()]

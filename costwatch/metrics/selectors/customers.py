"""The Customers page's numbers: month to date per value of a declared dimension."""

import calendar
import datetime as dt
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from ..definitions import day_start
from ..models import DimensionDay


def dimension_values_month(*, project, dimension: str, now=None, search: str = "", limit: int = 50,
                           environment=None) -> dict:
    """Month to date (project timezone) per value of `dimension`, most expensive first: cost,
    end-of-month forecast (spent / elapsed x month length), calls and Pro share. `search` keeps
    the values containing it (case-insensitive). Also the number of values that had calls."""
    now = now or timezone.now()
    tzinfo = project.tzinfo
    today = now.astimezone(tzinfo).date()
    first = today.replace(day=1)
    month_start = day_start(first, tzinfo)
    month_end = day_start(first + dt.timedelta(days=calendar.monthrange(first.year, first.month)[1]), tzinfo)
    rows = DimensionDay.objects.filter(project=project, dimension=dimension, day__gte=first, day__lte=today)
    if environment:
        rows = rows.filter(environment=environment)
    if search:
        rows = rows.filter(value__icontains=search)
    per_value = rows.values("value").annotate(cost=Sum("cost_usd"), priced=Sum("priced_calls"), calls=Sum("calls"),
                                              routed=Sum("routed_calls"), routed_pro=Sum("routed_pro_calls"))
    elapsed = Decimal((now - month_start).total_seconds())
    length = Decimal((month_end - month_start).total_seconds())
    values = []
    for row in per_value.order_by("-cost", "value")[:limit]:
        cost = row["cost"] if row["priced"] else None
        values.append({
            "value": row["value"], "cost_usd": cost, "calls": int(row["calls"] or 0),
            "forecast_usd": cost * length / elapsed if cost is not None and elapsed > 0 else None,
            "pro_share": row["routed_pro"] / row["routed"] if row["routed"] else None,
        })
    return {"month_start": first, "values": values, "value_count": per_value.count()}

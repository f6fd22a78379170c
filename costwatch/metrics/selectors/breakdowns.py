"""Per model (with where its price comes from) and per value of a declared dimension."""

import datetime as dt

from django.utils import timezone

from costwatch.dbrouting import read_connection
from ingest.pricing import PriceBook

from ..windows import split
from .parts import ZERO, _day_filter, _feature_id, _hour_filter, _sum_parts, local_days, metrics_from_parts


def model_metrics(*, project, start, end, environment=None) -> list[dict]:
    """Per (model, tier): calls, tokens, cost, unpriced calls and where its price comes from, over an
    hour-exact window: whole days from ModelDay, the edge hours from HourlyRollup (same columns)."""
    window = split(project, start, end)
    sums = """d.model, d.tier, sum(d.calls), sum(d.input_tokens), sum(d.output_tokens), sum(d.cost_usd),
              sum(d.priced_calls), sum(d.unpriced_calls), sum(d.client_priced_calls)"""
    where, params = _day_filter(project, window.first_day or dt.date.min, window.last_day or dt.date.min,
                                environment)
    hour_where, hour_params = _hour_filter(project, window, environment)
    sql = f"""SELECT u.model, u.tier, sum(u.calls), sum(u.input_tokens), sum(u.output_tokens), sum(u.cost),
                     sum(u.priced), sum(u.unpriced), sum(u.client_priced)
              FROM (SELECT {sums} FROM metrics_modelday d WHERE {where} GROUP BY 1, 2
                    UNION ALL SELECT {sums} FROM metrics_hourlyrollup d WHERE {hour_where} GROUP BY 1, 2)
                   AS u(model, tier, calls, input_tokens, output_tokens, cost, priced, unpriced, client_priced)
              GROUP BY 1, 2"""
    with read_connection().cursor() as cursor:
        cursor.execute(sql, {**params, **hour_params})
        rows = cursor.fetchall()
    sources = _price_sources(project, {row[0] for row in rows})
    result = []
    for model, tier, calls, input_tokens, output_tokens, cost, priced, unpriced, client_priced in rows:
        # Where the range's costs came from: a price added later (from a date after these calls)
        # does not make calls that stayed unpriced "catalogue".
        source = (priced and sources.get(model)) or ("client" if client_priced else "none")
        result.append({"model": model, "tier": tier, "price_source": source, "calls": int(calls),
                       "input_tokens": int(input_tokens), "output_tokens": int(output_tokens),
                       "cost_usd": cost if priced else None, "priced_calls": int(priced),
                       "unpriced_calls": int(unpriced), "client_priced_calls": int(client_priced)})
    result.sort(key=lambda r: (-(r["cost_usd"] or ZERO), -r["calls"], r["model"], r["tier"]))
    return result


def _price_sources(project, models) -> dict:
    """{model: 'override' | 'catalogue'} for models with a standard price in force now."""
    if not models:
        return {}
    book, now = PriceBook.load(project=project, models=models), timezone.now()
    sources = {}
    for model in models:
        price = book.match(model=model, provider="", service_tier="standard", ts=now).price
        if price is not None:
            sources[model] = "override" if price.is_override else "catalogue"
    return sources


def dimension_breakdown(*, project, dimension, start, end, feature=None, environment=None) -> list[dict]:
    """Per value of a declared dimension: cost, calls, pro_share (cost per end customer)."""
    return dimension_breakdowns(project=project, dimensions=[dimension], start=start, end=end, feature=feature,
                                environment=environment)[dimension]


def dimension_breakdowns(*, project, dimensions, start, end, feature=None, environment=None) -> dict[str, list]:
    """dimension_breakdown for several dimensions at once, in one query: {dimension: rows}.
    `feature` is a name or a Feature."""
    dimensions = list(dimensions)
    result = {dimension: [] for dimension in dimensions}
    if not dimensions:
        return result
    first, last = local_days(project, start, end)
    where, params = _day_filter(project, first, last, environment)
    where += " AND d.dimension = ANY(%(dimensions)s)"
    params["dimensions"] = dimensions
    if feature is not None:
        where += " AND d.feature_id = %(feature_id)s"
        params["feature_id"] = _feature_id(project, feature)
    parts = _sum_parts("metrics_dimensionday", group_cols=["d.dimension", "d.value"], where=where, params=params)
    for (dimension, value), part in parts.items():
        m = metrics_from_parts(part)
        result[dimension].append({"value": value, "cost_usd": m["cost_usd"], "calls": m["calls"],
                                  "pro_share": m["pro_share"], "unpriced_calls": m["unpriced_calls"]})
    for rows in result.values():
        rows.sort(key=lambda r: (-(r["cost_usd"] or ZERO), -r["calls"], r["value"]))
    return result

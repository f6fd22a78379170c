"""Number formatting for the pages: money, shares, changes, counts."""

import json
from decimal import ROUND_HALF_UP, Decimal

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()
DASH = mark_safe('<span class="muted">–</span>')


@register.filter
def usd(value, places=2):
    """$1,234.56; small amounts keep significant digits ($0.0042)."""
    if value is None or value == "":
        return DASH
    value = Decimal(value)
    places = int(places)
    if value and abs(value) < Decimal("0.01") and places <= 2:
        places = 4 if abs(value) >= Decimal("0.0001") else 6
    quantized = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if quantized < 0 else ""
    return f"{sign}${abs(quantized):,.{places}f}"


@register.filter
def pct(value, places=1):
    if value is None or value == "":
        return DASH
    return f"{float(value) * 100:.{int(places)}f}%"


@register.filter
def pp_change(value):
    """A change of shares in percentage points, coloured: up is bad (more Pro), down is good."""
    if value is None:
        return DASH
    points = float(value) * 100
    css = "bad" if points >= 0.5 else "good" if points <= -0.5 else "muted"
    return format_html('<span class="{}">{}{} pp</span>', css, "+" if points > 0 else "", f"{points:.1f}")


@register.filter
def intcomma0(value):
    if value is None or value == "":
        return DASH
    return f"{int(round(float(value))):,}"


@register.filter
def ms(value):
    """A duration: milliseconds below 1 s, seconds above (so KPIs stay on one line)."""
    if value is None:
        return DASH
    value = float(value)
    return f"{value:,.0f} ms" if value < 1000 else f"{value / 1000:,.1f} s"


@register.filter
def cell(pair):
    """Render a (value, kind) pair of the Features table."""
    value, kind = pair
    if kind == "money":
        return usd(value)
    if kind == "unit_money":
        return usd(value, 4 if value is None or abs(value) >= Decimal("0.0001") else 6)
    if kind == "share":
        return pct(value)
    if kind == "change":
        return pp_change(value)
    if kind == "ms":
        return ms(value)
    if kind == "float":
        return DASH if value is None else f"{float(value):,.0f}"
    return intcomma0(value)


@register.filter
def as_json(value):
    return "" if value is None else json.dumps(value, sort_keys=True, default=str)


@register.filter
def signed_usd(value):
    if value is None:
        return DASH
    return ("+" if value > 0 else "") + str(usd(value))

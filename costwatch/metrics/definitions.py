"""The metric vocabulary, declared once: rollups, selectors, pages, the read API, what-if and
the rules import these instead of restating them (docs/rollups.md#metric-definitions).

Nothing here touches the database: these are names, lengths and formats.
"""

import datetime as dt
from decimal import Decimal

# --- roles ------------------------------------------------------------------------------

# The calls a router chose a tier for: the Pro share is Pro-tier calls of these roles over all
# calls of these roles (unknown tier counts in the denominator). Triage and shadow calls never count.
ROUTED_ROLES = ("primary", "escalation")
_ROUTED_SQL_LIST = ", ".join(f"'{role}'" for role in ROUTED_ROLES)


def routed_sql(alias: str) -> str:
    """The SQL condition "this row's role is routed", for a table aliased `alias`."""
    return f"{alias}.role IN ({_ROUTED_SQL_LIST})"


# --- windows ----------------------------------------------------------------------------

HOUR = dt.timedelta(hours=1)
WINDOW_24H = dt.timedelta(hours=24)  # "the last 24 h"
WINDOW_7D = dt.timedelta(days=7)  # "the last 7 days" (the recent Pro share)
WINDOW_28D = dt.timedelta(days=28)  # a baseline: the 28 days before a recent window
WINDOW_35D = WINDOW_7D + WINDOW_28D  # a recent week and its baseline: what pro_share_change reads


# --- time -------------------------------------------------------------------------------

def hour_floor(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour holding `moment` (hourly rollups are keyed by it)."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def day_start(day: dt.date, tzinfo) -> dt.datetime:
    """Local midnight of `day` in `tzinfo` (daily rollups are project-timezone days)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=tzinfo)


def day_floor(moment: dt.datetime, tzinfo) -> dt.datetime:
    """The local midnight that starts the `tzinfo` day holding `moment`."""
    return day_start(moment.astimezone(tzinfo).date(), tzinfo)


def isoformat_z(moment: dt.datetime | None) -> str | None:
    """RFC 3339, with 'Z' for UTC (None stays None)."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# --- money ------------------------------------------------------------------------------

MONEY_QUANTUM = Decimal("1e-12")  # the rollups keep 12 decimals


def money_str(value, *, decimals: int | None = None) -> str | None:
    """Money as a decimal string (None stays None): at least 6 decimals and up to the 12 the
    rollups keep; with `decimals`, exactly that many (alert numbers use 6)."""
    if value is None:
        return None
    if decimals is not None:
        return f"{Decimal(value):.{decimals}f}"
    text = f"{Decimal(value).quantize(MONEY_QUANTUM):f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(6, '0')}"

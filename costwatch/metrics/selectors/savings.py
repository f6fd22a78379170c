"""Savings evidence per feature and window (docs/savings.md#evidence), read from the pairs table.

Per feature: n pairs, the mean paired difference (Lite - Pro) with its 95% t-interval, the share
of pairs where Lite scored at least as well as Pro, the share where Lite scored more than 0.1
below Pro (what the target Pro share is made of), Lite vs Pro latency p50 and the newest pair.
Shadow pairs are the evidence; escalation pairs (chosen by low confidence, so not a fair sample)
are reported beside it, never pooled. Every figure with an empty denominator is null with a reason.
"""

import datetime as dt
import math
from dataclasses import dataclass, field
from statistics import NormalDist

from costwatch.dbrouting import read_connection
from costwatch.metrics.models import SavingsPair

WORSE_MARGIN = 0.1  # Lite "clearly worse" on a pair: more than this below Pro


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile: exact for 1 and 2 degrees of freedom, else the Cornish-Fisher
    expansion around the normal quantile (error below 1e-4 from 3 degrees of freedom on)."""
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4


@dataclass
class Evidence:
    pairs: int = 0
    mean_diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    lite_at_least_as_good_share: float | None = None
    lite_worse_share: float | None = None
    lite_latency_p50_ms: float | None = None
    pro_latency_p50_ms: float | None = None
    newest_pair: dt.datetime | None = None
    nulls: dict = field(default_factory=dict)  # figure -> why it is null

    def as_dict(self, window: str) -> dict:
        return {"pairs": self.pairs, "mean_diff": _round(self.mean_diff), "ci_low": _round(self.ci_low),
                "ci_high": _round(self.ci_high),
                "lite_at_least_as_good_share": _round(self.lite_at_least_as_good_share),
                "window": window, "lite_latency_p50_ms": self.lite_latency_p50_ms,
                "pro_latency_p50_ms": self.pro_latency_p50_ms,
                "newest_pair": self.newest_pair.isoformat().replace("+00:00", "Z") if self.newest_pair else None,
                "null_reasons": dict(self.nulls)}


def _round(value):
    return None if value is None else round(value, 4)


def evidence_from_sums(*, pairs, total, squares, at_least, worse, lite_p50=None, pro_p50=None, newest=None):
    """The evidence figures from a group's sums of differences and squared differences."""
    evidence = Evidence(pairs=pairs, lite_latency_p50_ms=lite_p50, pro_latency_p50_ms=pro_p50, newest_pair=newest)
    if not pairs:
        for name in ("mean_diff", "ci_low", "ci_high", "lite_at_least_as_good_share"):
            evidence.nulls[name] = "no pairs in the window"
        return evidence
    evidence.mean_diff = total / pairs
    evidence.lite_at_least_as_good_share = at_least / pairs
    evidence.lite_worse_share = worse / pairs
    if pairs < 2:
        evidence.nulls["ci_low"] = evidence.nulls["ci_high"] = "an interval needs at least 2 pairs"
        return evidence
    variance = max(0.0, (squares - total * total / pairs) / (pairs - 1))
    half = t_quantile(0.975, pairs - 1) * math.sqrt(variance / pairs)
    evidence.ci_low, evidence.ci_high = evidence.mean_diff - half, evidence.mean_diff + half
    return evidence


EVIDENCE_SQL = f"""
SELECT feature_id, kind, {{group}} count(*), sum(lite_quality - pro_quality),
       sum((lite_quality - pro_quality) * (lite_quality - pro_quality)),
       count(*) FILTER (WHERE lite_quality >= pro_quality),
       count(*) FILTER (WHERE lite_quality < pro_quality - {WORSE_MARGIN}),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lite_latency_ms),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY pro_latency_ms), max(lite_ts)
FROM {SavingsPair._meta.db_table}
WHERE project_id = %(project_id)s AND lite_ts >= %(start)s AND lite_ts < %(end)s
GROUP BY 1, 2 {{group_by}}
"""


def savings_evidence(*, project, start: dt.datetime, end: dt.datetime, by_route_reason: bool = False) -> dict:
    """{(feature_id, kind[, route_reason]): Evidence} for the pairs whose Lite call is in [start, end)."""
    group, group_by = ("route_reason,", ", 3") if by_route_reason else ("", "")
    with read_connection().cursor() as cursor:
        cursor.execute(EVIDENCE_SQL.format(group=group, group_by=group_by),
                       {"project_id": project.pk, "start": start, "end": end})
        rows = cursor.fetchall()
    result = {}
    for row in rows:
        key, rest = (row[:3], row[3:]) if by_route_reason else (row[:2], row[2:])
        pairs, total, squares, at_least, worse, lite_p50, pro_p50, newest = rest
        result[tuple(key)] = evidence_from_sums(pairs=pairs, total=total, squares=squares, at_least=at_least,
                                                worse=worse, lite_p50=lite_p50, pro_p50=pro_p50, newest=newest)
    return result


def no_evidence() -> Evidence:
    """The evidence of a feature without pairs: every figure null, saying why."""
    return evidence_from_sums(pairs=0, total=0, squares=0, at_least=0, worse=0)

"""Fixed log-bucket histograms: the one shape every rollup stores latency, ttft and output tokens in.

Bucket 0 holds values below 1 (in practice 0); bucket i >= 1 holds [1.25**(i-1), 1.25**i);
the last bucket (N_BUCKETS - 1) also holds everything above. A histogram is a list of
counts indexed by bucket, trimmed after its last non-zero bucket, so histograms of any two
hours, days or groups merge by element-wise addition (in SQL `cw_hist_sum`, in numpy the
selectors' `hist_sum`).

Quantiles come back as the geometric midpoint of the bucket holding the nearest-rank value,
so the estimate is within sqrt(1.25) - 1 = 11.8% of the exact nearest-rank quantile.

The refresh computes bucket indexes in SQL with `cw_bucket()` (created by migration 0003);
`bucket_index` is its Python twin, and the two must agree value for value (tested).
"""

import math
from collections.abc import Sequence

RATIO = 1.25
LN_RATIO = 0.22314355131420976  # math.log(1.25), spelled out so the SQL twin uses the same double
N_BUCKETS = 100  # 1.25**98 ~ 3.2e9 > 2**31: every int32 value has its own bucket

SQL_BUCKET_FUNCTION = f"""
CREATE OR REPLACE FUNCTION cw_bucket(value double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN value IS NULL THEN NULL
        WHEN value < 1 THEN 0
        ELSE least(floor(ln(value) / {LN_RATIO!r}::double precision)::integer + 1, {N_BUCKETS - 1})
    END
$$;
"""


def bucket_index(value) -> int | None:
    """The bucket a value falls in (None for None), exactly as SQL's cw_bucket() computes it."""
    if value is None:
        return None
    value = float(value)
    if value < 1:
        return 0
    return min(math.floor(math.log(value) / LN_RATIO) + 1, N_BUCKETS - 1)


def bucket_bounds(index: int) -> tuple[float, float]:
    """[low, high) of a bucket; the last bucket is open-ended."""
    if index == 0:
        return 0.0, 1.0
    high = math.inf if index == N_BUCKETS - 1 else RATIO**index
    return RATIO ** (index - 1), high


def bucket_midpoint(index: int) -> float:
    """The value a bucket stands for: its geometric midpoint (0 for bucket 0)."""
    if index == 0:
        return 0.0
    return RATIO ** (index - 0.5)


def count(hist: Sequence[int] | None) -> int:
    return sum(hist or [])


def quantile(hist: Sequence[int] | None, q: float) -> float | None:
    """Estimate of the nearest-rank q-quantile (0 < q <= 1); None for an empty histogram."""
    total = count(hist)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, bucket_count in enumerate(hist):
        seen += bucket_count
        if seen >= rank:
            return bucket_midpoint(index)
    return bucket_midpoint(len(hist) - 1)  # unreachable: seen reaches total


def share_at_most(hist: Sequence[int] | None, cap: float) -> float | None:
    """Share of values whose bucket lies entirely at or below `cap` (for what-if panels)."""
    total = count(hist)
    if total == 0:
        return None
    below = sum(c for i, c in enumerate(hist) if bucket_bounds(i)[1] <= cap)
    return below / total


def capped_mean(hist: Sequence[int] | None, cap: float) -> float | None:
    """Mean of min(value, cap) estimated from bucket midpoints (what-if 'cap output at N tokens')."""
    total = count(hist)
    if total == 0:
        return None
    return sum(c * min(bucket_midpoint(i), cap) for i, c in enumerate(hist)) / total

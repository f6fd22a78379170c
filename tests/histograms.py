"""Log-bucket histograms worked out the plain way, as the tests' own oracle.

The product buckets values in SQL (`cw_bucket`, `cw_hist`) and merges and reads them with
numpy; these tests must not agree with it by calling it. The rule, from docs/rollups.md:
bucket 0 holds values below 1, bucket i holds [1.25**(i-1), 1.25**i), the last of the 100
buckets also holds everything above, and a histogram is trimmed after its last non-zero
bucket. Bounds are walked one by one here, where the product takes a logarithm.
"""

import math

BUCKETS = 100


def bucket_of(value) -> int:
    if value < 1:
        return 0
    index = 1
    while index < BUCKETS - 1 and value >= 1.25**index:
        index += 1
    return index


def histogram(values) -> list[int]:
    counts = [0] * BUCKETS
    for value in values:
        if value is not None:
            counts[bucket_of(value)] += 1
    while counts and not counts[-1]:
        counts.pop()
    return counts


def summed(hists) -> list[int]:
    """Histograms added bucket by bucket (what merging days or groups must give)."""
    total = [0] * BUCKETS
    for hist in hists:
        for index, count in enumerate(hist or []):
            total[index] += count
    while total and not total[-1]:
        total.pop()
    return total


def quantile(values, q: float) -> float | None:
    """The value the rollups must report for the nearest-rank q-quantile of raw `values`: the
    geometric midpoint of the bucket that holds it (0 for bucket 0)."""
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    exact = present[max(1, math.ceil(q * len(present))) - 1]
    index = bucket_of(exact)
    return 0.0 if index == 0 else 1.25 ** (index - 0.5)

import math
import random

import pytest
from django.db import connection

from costwatch.metrics import buckets
from tests import histograms


def sql_buckets(values):
    with connection.cursor() as cursor:
        cursor.execute("SELECT v, cw_bucket(v) FROM unnest(%s::double precision[]) AS v", [values])
        return dict(cursor.fetchall())


def test_every_bucket_spans_a_ratio_of_at_most_1_25():
    for index in range(1, buckets.N_BUCKETS - 1):
        low, high = buckets.bucket_bounds(index)
        assert high / low == pytest.approx(1.25)
        assert buckets.bucket_index(low * 1.0000001) == index
        assert buckets.bucket_index(high * 1.0000001) == index + 1


@pytest.mark.django_db
def test_sql_bucket_agrees_with_python_twin_value_for_value():
    values = list(range(0, 20001)) + [2**31 - 1, 2**31 - 2, 10**9, 123456789]
    # integers on both sides of every bucket boundary up to 2**31
    for index in range(1, 97):
        edge = 1.25**index
        values += [math.floor(edge) - 1, math.floor(edge), math.ceil(edge), math.ceil(edge) + 1]
    values = sorted({v for v in values if 0 <= v < 2**31})
    sql = sql_buckets([float(v) for v in values])
    mismatches = [(v, sql[float(v)], buckets.bucket_index(v)) for v in values if sql[float(v)] != buckets.bucket_index(v)]
    assert mismatches == []
    assert sql[0.0] == 0 and sql[1.0] == 1 and sql[float(2**31 - 1)] < buckets.N_BUCKETS


@pytest.mark.django_db
def test_sql_histogram_aggregate_matches_python_histogram():
    rng = random.Random(7)
    values = [rng.choice([None, 0, rng.randint(1, 100000)]) for _ in range(3000)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT cw_hist(cw_bucket(v)) FROM unnest(%s::integer[]) AS v", [values])
        sql_hist = cursor.fetchone()[0]
        cursor.execute("SELECT cw_hist_sum(h) FROM (VALUES (%s::integer[]), (%s::integer[]), ('{}'::integer[])) t(h)",
                       [[1, 0, 3], [0, 2, 0, 0, 5]])
        sql_sum = cursor.fetchone()[0]
    assert sql_hist == histograms.histogram(values)
    assert sum(sql_hist) == sum(1 for v in values if v is not None)
    assert sql_sum == [1, 2, 3, 0, 5]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantile_is_within_12_5_percent_of_the_exact_nearest_rank_value(q, seed):
    rng = random.Random(seed)
    values = [max(1, int(rng.lognormvariate(6, 1.5))) for _ in range(rng.randint(1, 4000))]
    exact = sorted(values)[max(1, math.ceil(q * len(values))) - 1]
    estimate = buckets.quantile(histograms.histogram(values), q)
    assert abs(estimate - exact) <= 0.125 * exact


def test_quantile_of_zeros_and_empty():
    assert buckets.quantile([3], 0.95) == 0
    assert buckets.quantile([], 0.5) is None
    assert buckets.quantile(None, 0.5) is None

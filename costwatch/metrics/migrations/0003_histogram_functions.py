"""SQL helpers for the rollup refresh: cw_bucket() (twin of buckets.bucket_index), the
cw_hist(bucket) aggregate that builds a trimmed count array, and cw_hist_sum(int[]) that
adds histograms element-wise."""

from django.db import migrations

from costwatch.metrics.buckets import N_BUCKETS, SQL_BUCKET_FUNCTION

FORWARD = SQL_BUCKET_FUNCTION + f"""
CREATE OR REPLACE FUNCTION cw_hist_add(state integer[], bucket integer) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    state[bucket + 1] := state[bucket + 1] + 1;
    RETURN state;
END
$$;

CREATE OR REPLACE FUNCTION cw_hist_merge(state integer[], hist integer[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(hist), 0) LOOP
        state[i] := state[i] + hist[i];
    END LOOP;
    RETURN state;
END
$$;

CREATE OR REPLACE FUNCTION cw_hist_trim(state integer[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    last integer := cardinality(state);
BEGIN
    WHILE last > 0 AND state[last] = 0 LOOP
        last := last - 1;
    END LOOP;
    RETURN state[1:last];
END
$$;

CREATE AGGREGATE cw_hist(integer) (
    SFUNC = cw_hist_add, STYPE = integer[], FINALFUNC = cw_hist_trim,
    INITCOND = '{{{",".join(["0"] * N_BUCKETS)}}}'
);

CREATE AGGREGATE cw_hist_sum(integer[]) (
    SFUNC = cw_hist_merge, STYPE = integer[], FINALFUNC = cw_hist_trim,
    INITCOND = '{{{",".join(["0"] * N_BUCKETS)}}}'
);
"""

BACKWARD = """
DROP AGGREGATE IF EXISTS cw_hist_sum(integer[]);
DROP AGGREGATE IF EXISTS cw_hist(integer);
DROP FUNCTION IF EXISTS cw_hist_trim(integer[]);
DROP FUNCTION IF EXISTS cw_hist_merge(integer[], integer[]);
DROP FUNCTION IF EXISTS cw_hist_add(integer[], integer);
DROP FUNCTION IF EXISTS cw_bucket(double precision);
"""


class Migration(migrations.Migration):
    dependencies = [("metrics", "0002_dimension_counters_and_indexes")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]

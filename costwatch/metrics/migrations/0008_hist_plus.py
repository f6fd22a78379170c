"""cw_hist_plus(a, b): two trimmed histograms added element-wise (the refresh adds a batch's
histogram to the one stored for its hour or day)."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION cw_hist_plus(a integer[], b integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(coalesce(a[i], 0) + coalesce(b[i], 0) ORDER BY i), '{}')
    FROM generate_series(1, greatest(coalesce(cardinality(a), 0), coalesce(cardinality(b), 0))) AS i
$$;
"""
BACKWARD = "DROP FUNCTION IF EXISTS cw_hist_plus(integer[], integer[]);"


class Migration(migrations.Migration):
    dependencies = [("metrics", "0007_role_priced_calls")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]

"""Reads for the read API, the pages and the rules: rollup tables only, never raw events.

One module per concern: `parts` (summed rollup counters and `metrics_from_parts`, where every
metric is defined), `features` (the features list), `timeseries`, `breakdowns` (per model, per
dimension value), `customers` (the Customers page), `overview`, `feature_page` and `histograms` (many histograms at once).
"""

from .breakdowns import dimension_breakdown, dimension_breakdowns, model_metrics
from .customers import dimension_values_month
from .feature_page import (
    FEATURE_DAILY_COLUMNS,
    feature_daily,
    feature_daily_calls,
    feature_first_day,
    feature_metrics_from_daily,
    feature_output_tokens_by_model,
)
from .features import feature_daily_costs, feature_metrics, pro_share_changes
from .histograms import hist_matrix, hist_sum
from .overview import data_as_of, environments, overview, unpriced_models
from .parts import PART_NAMES, ZERO, local_days, metrics_from_parts
from .timeseries import bucket_starts, timeseries

__all__ = [
    "FEATURE_DAILY_COLUMNS", "PART_NAMES", "ZERO", "bucket_starts", "data_as_of",
    "dimension_breakdown", "dimension_breakdowns", "dimension_values_month", "environments", "feature_daily",
    "feature_daily_calls", "feature_daily_costs", "feature_first_day", "feature_metrics",
    "feature_metrics_from_daily", "feature_output_tokens_by_model", "hist_matrix", "hist_sum", "local_days",
    "metrics_from_parts", "model_metrics", "overview", "pro_share_changes", "timeseries", "unpriced_models",
]

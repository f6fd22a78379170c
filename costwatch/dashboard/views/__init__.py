"""Dashboard pages under /p/<slug>/: thin views over costwatch.metrics.selectors (rollups only),
one module per page (see feature.py for the one raw-event read)."""

from .customers_page import customers_page
from .feature import feature_detail
from .features import features
from .models_page import models_page
from .overview import overview
from .savings_page import savings_page
from .settings_page import settings_page

__all__ = ["customers_page", "feature_detail", "features", "models_page", "overview", "savings_page", "settings_page"]

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "costwatch.metrics"
    label = "metrics"
    verbose_name = "Rollups"

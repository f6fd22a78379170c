from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "costwatch.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

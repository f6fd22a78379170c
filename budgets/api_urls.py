from django.urls import path

from . import api

urlpatterns = [
    path("rules", api.RuleListView.as_view(), name="rules-list"),
    path("rules/<int:rule_id>", api.RuleDetailView.as_view(), name="rules-detail"),
    path("channels", api.ChannelListView.as_view(), name="channels-list"),
    path("channels/<int:channel_id>", api.ChannelDetailView.as_view(), name="channels-detail"),
    path("alerts", api.AlertListView.as_view(), name="alerts-list"),
    path("alerts/<int:alert_id>/ack", api.AlertAckView.as_view(), name="alerts-ack"),
    path("budget-status", api.BudgetStatusView.as_view(), name="budget-status"),
]

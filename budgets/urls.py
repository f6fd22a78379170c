from django.urls import path

from . import views

app_name = "budgets"

urlpatterns = [
    path("p/<slug:slug>/alerts/", views.alerts_page, name="alerts"),
    path("p/<slug:slug>/alerts/<int:alert_id>/ack", views.alert_ack, name="alert_ack"),
    path("p/<slug:slug>/rules/", views.rules_page, name="rules"),
    path("p/<slug:slug>/rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("p/<slug:slug>/rules/<int:rule_id>/toggle", views.rule_toggle, name="rule_toggle"),
    path("p/<slug:slug>/rules/<int:rule_id>/delete", views.rule_delete, name="rule_delete"),
    path("p/<slug:slug>/channels/", views.channels_page, name="channels"),
    path("p/<slug:slug>/channels/<int:channel_id>/test", views.channel_test, name="channel_test"),
    path("p/<slug:slug>/channels/<int:channel_id>/delete", views.channel_delete, name="channel_delete"),
]

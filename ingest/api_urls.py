from django.urls import path

from . import api

urlpatterns = [
    path("events", api.EventsView.as_view(), name="api-events"),
    path("scores", api.ScoresView.as_view(), name="api-scores"),
    path("prices", api.PricesView.as_view(), name="api-prices"),
]

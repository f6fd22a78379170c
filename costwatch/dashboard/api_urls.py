from django.urls import path

from . import api

urlpatterns = [
    path("features", api.FeaturesView.as_view(), name="api-features"),
    path("features/<str:name>", api.FeatureDetailView.as_view(), name="api-feature"),
    path("timeseries", api.TimeseriesView.as_view(), name="api-timeseries"),
    path("models", api.ModelsView.as_view(), name="api-models"),
    path("breakdown", api.BreakdownView.as_view(), name="api-breakdown"),
]

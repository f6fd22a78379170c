from django.urls import path

from . import api, savings_api

urlpatterns = [
    path("features", api.FeaturesView.as_view(), name="api-features"),
    path("features/<str:name>", api.FeatureDetailView.as_view(), name="api-feature"),
    path("timeseries", api.TimeseriesView.as_view(), name="api-timeseries"),
    path("models", api.ModelsView.as_view(), name="api-models"),
    path("recommendations", savings_api.RecommendationsView.as_view(), name="api-recommendations"),
    path("breakdown", api.BreakdownView.as_view(), name="api-breakdown"),
]

"""OTLP/HTTP receiver: exporters point at <base>/v1/traces (SPEC 2 "OTLP")."""

from django.urls import path

from .otlp import OtlpTracesView

urlpatterns = [
    path("v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
]

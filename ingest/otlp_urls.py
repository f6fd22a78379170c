"""OTLP/HTTP receiver: exporters point at <base>/v1/traces (docs/sending-events.md#3-opentelemetry)."""

from django.urls import path

from .otlp.views import OtlpTracesView

urlpatterns = [
    path("v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
]

from django.urls import path

from . import views

app_name = "ingest"

urlpatterns = [
    path("p/<slug:slug>/prices/", views.prices_page, name="prices"),
    path("p/<slug:slug>/prices/add", views.price_add, name="price_add"),
]

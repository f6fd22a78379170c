from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("p/<slug:slug>/", views.overview, name="overview"),
    path("p/<slug:slug>/features/", views.features, name="features"),
    path("p/<slug:slug>/features/<path:name>/", views.feature_detail, name="feature"),
    path("p/<slug:slug>/models/", views.models_page, name="models"),
    path("p/<slug:slug>/customers/", views.customers_page, name="customers"),
    path("p/<slug:slug>/savings/", views.savings_page, name="savings"),
    path("p/<slug:slug>/settings/", views.settings_page, name="settings"),
]

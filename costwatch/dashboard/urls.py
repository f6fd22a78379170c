from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("p/<slug:slug>/", views.overview, name="overview"),
]

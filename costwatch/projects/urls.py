from django.urls import path

from . import views

app_name = "projects"

urlpatterns = [
    path("p/<slug:slug>/keys/", views.api_keys, name="keys"),
    path("p/<slug:slug>/keys/new", views.api_key_create, name="key_create"),
    path("p/<slug:slug>/keys/<str:key_id>/revoke", views.api_key_revoke_view, name="key_revoke"),
]

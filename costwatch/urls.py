from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from costwatch.api import api_not_found
from costwatch.projects import views as project_views
from costwatch.projects.api import KeyInfoView

api_v1 = [
    path("key", KeyInfoView.as_view(), name="api-key-info"),
    path("", include("ingest.api_urls")),
    path("", include("costwatch.dashboard.api_urls")),
    path("", include("budgets.api_urls")),
    re_path(r"^(?P<path>.*)$", api_not_found),
]

urlpatterns = [
    path("", project_views.home, name="home"),
    path("healthz", project_views.healthz, name="healthz"),
    path("favicon.ico", project_views.favicon),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    path("", include("ingest.otlp_urls")),
    path("", include("costwatch.projects.urls")),
    path("", include("ingest.urls")),
    path("", include("budgets.urls")),
    path("", include("costwatch.dashboard.urls")),
]

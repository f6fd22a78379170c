from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from costwatch.pagelists import csv_response, page_list, wants_csv

from .health import health_report
from .models import SCOPES, ApiKey
from .selectors import project_for_user, projects_for_user, user_is_project_admin
from .services import api_key_issue, api_key_revoke


@login_required
def home(request):
    projects = list(projects_for_user(user=request.user))
    if len(projects) == 1:
        return redirect("dashboard:overview", slug=projects[0].slug)
    return render(request, "projects/home.html", {"projects": projects})


@login_required
def api_keys(request, slug):
    project = project_for_user(user=request.user, slug=slug)
    if wants_csv(request):
        return csv_response(filename=f"{project.slug}-api-keys.csv", columns=KEY_CSV_COLUMNS,
                            rows=project.api_keys.all(), values=lambda key: [getattr(key, c) for c in KEY_CSV_COLUMNS])
    return _keys_page(request, project)


KEY_CSV_COLUMNS = ["key_id", "name", "scopes", "created_at", "last_used_at", "revoked_at"]  # never a secret or hash


def _keys_page(request, project, issued_key=None):
    context = {
        "project": project,
        "keys": page_list(request, project.api_keys.all(), path=reverse("projects:keys", args=[project.slug])),
        "scopes": SCOPES,
        "is_admin": user_is_project_admin(user=request.user, project=project),
        "issued_key": issued_key,
        "nav": "keys",
    }
    response = render(request, "projects/api_keys.html", context)
    if issued_key:
        add_never_cache_headers(response)  # Cache-Control: no-store: no cache or back button keeps it
    return response


@login_required
@require_POST
def api_key_create(request, slug):
    project = project_for_user(user=request.user, slug=slug, admin=True)
    scopes = [s for s in request.POST.getlist("scopes") if s in SCOPES]
    if not scopes:
        messages.error(request, "Pick at least one scope for the new key.")
        return redirect("projects:keys", slug=slug)
    issued = api_key_issue(project=project, scopes=scopes, name=request.POST.get("name", "")[:100],
                           actor=request.user)
    # Shown once, in the answer to this POST, and kept nowhere: not in the session (whose table
    # would hold it until the next visit), not in any table (only its SHA-256 is stored).
    return _keys_page(request, project, issued_key=issued.plaintext)


@login_required
@require_POST
def api_key_revoke_view(request, slug, key_id):
    project = project_for_user(user=request.user, slug=slug, admin=True)
    api_key = get_object_or_404(ApiKey, project=project, key_id=key_id)
    if api_key_revoke(api_key=api_key, actor=request.user):
        messages.success(request, f"Key {api_key.key_id} revoked; requests with it now get 401.")
    return redirect("projects:keys", slug=slug)


def healthz(request):
    report = health_report()
    return JsonResponse(report, status=200 if report["database"] == "ok" else 503)


def favicon(request):
    return HttpResponse(status=204)


def not_found(request, *args, **kwargs):
    raise Http404

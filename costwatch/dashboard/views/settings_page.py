"""The project's settings page: settings and members."""

import json

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from costwatch.pagelists import csv_response, page_list, wants_csv
from costwatch.projects.models import AuditLog, Membership
from costwatch.projects.selectors import project_for_user
from costwatch.projects.services import membership_set, project_settings_update

from ..forms import MemberForm, ProjectSettingsForm
from .common import _page_context


@login_required
def settings_page(request, slug):
    ctx = _page_context(request, slug, "settings")
    project = ctx["project"]
    members = Membership.objects.filter(project=project).select_related("user").order_by("user__username")
    audit_log = AuditLog.objects.filter(project=project).select_related("actor")
    if wants_csv(request, "members"):
        return csv_response(filename=f"{project.slug}-members.csv", columns=["username", "role"], rows=members,
                            values=lambda member: [member.user.get_username(), member.role])
    if wants_csv(request, "audit"):
        return csv_response(filename=f"{project.slug}-audit-log.csv", columns=AUDIT_CSV_COLUMNS, rows=audit_log,
                            values=_audit_cells)
    initial = {"timezone": project.timezone, "dimensions": ", ".join(project.dimensions or []),
               "ingest_rate_limit": project.ingest_rate_limit, "huge_cap_tokens": project.huge_cap_tokens}
    settings_form, member_form = ProjectSettingsForm(initial=initial), MemberForm()
    if request.method == "POST":
        project_for_user(user=request.user, slug=slug, admin=True)  # viewers: 404
        if request.POST.get("action") == "member":
            member_form = MemberForm(request.POST)
            if member_form.is_valid() and _member_set(request, project, member_form):
                return redirect("dashboard:settings", slug=slug)
        else:
            settings_form = ProjectSettingsForm(request.POST)
            if settings_form.is_valid() and _settings_save(request, project, settings_form):
                return redirect("dashboard:settings", slug=slug)
    ctx.update(
        settings_form=settings_form, member_form=member_form,
        members=page_list(request, members, name="members"),
        audit_log=page_list(request, audit_log, limit=AUDIT_PAGE_ROWS, name="audit"),
    )
    return render(request, "dashboard/settings.html", ctx)


AUDIT_PAGE_ROWS = 100
AUDIT_CSV_COLUMNS = ["created_at", "actor", "action", "target_type", "target_id", "before", "after"]


def _audit_cells(entry) -> list:
    return [entry.created_at, entry.actor_label or (entry.actor and entry.actor.get_username()), entry.action,
            entry.target_type, entry.target_id, *(None if v is None else json.dumps(v) for v in (entry.before,
                                                                                                 entry.after))]


def _settings_save(request, project, form) -> bool:
    try:
        changed = project_settings_update(project=project, values=form.cleaned_data, actor=request.user)
    except ValidationError as exc:
        form.add_error(None, exc)
        return False
    if not changed:
        messages.info(request, "Nothing changed.")
    elif set(changed) & {"huge_cap_tokens", "dimensions", "timezone"}:
        messages.success(request, f"Saved {', '.join(changed)}. Rollups are being rebuilt with the new settings; "
                                  "pages catch up within a few minutes.")
    else:
        messages.success(request, f"Saved {', '.join(changed)}.")
    return True


def _member_set(request, project, form) -> bool:
    user = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
    if user is None:
        form.add_error("username", "No user with that username: create the account first.")
        return False
    membership_set(project=project, user=user, role=form.cleaned_data["role"], actor=request.user)
    messages.success(request, f"{user.get_username()} is now {form.cleaned_data['role']} of {project.name}.")
    return True

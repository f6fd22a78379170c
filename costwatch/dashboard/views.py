from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from costwatch.projects.selectors import project_for_user


@login_required
def overview(request, slug):
    project = project_for_user(user=request.user, slug=slug)
    return render(request, "dashboard/overview.html", {"project": project, "nav": "overview"})

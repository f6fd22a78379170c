"""`{% data_freshness project %}`: the rollups' "data as of" line that every project page shows."""

import datetime as dt

from django import template
from django.utils import timezone

from costwatch.metrics.models import RollupState

register = template.Library()
STALE_AFTER = dt.timedelta(minutes=5)


def freshness(project) -> dict:
    state = RollupState.objects.filter(project=project).only("refreshed_at").first()
    as_of = state.refreshed_at if state else None
    has_data = as_of is not None or project.features.exists()
    return {"data_as_of": as_of, "stale": has_data and (as_of is None or timezone.now() - as_of > STALE_AFTER)}


@register.inclusion_tag("dashboard/_freshness.html")
def data_freshness(project):
    return freshness(project)

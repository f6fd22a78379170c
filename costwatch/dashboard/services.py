"""Writes made from the Settings page: project settings, audit logged. (Feature settings are
the metrics app's `feature_settings_update`, shared with `PATCH /api/v1/features/{name}`.)"""

from django.db import transaction

from costwatch.metrics.services import project_mark_all_dirty
from costwatch.projects.services import audit_record

# Settings whose change alters what the rollups hold (cap classification, dimension rows, local days).
ROLLUP_SETTINGS = ("huge_cap_tokens", "dimensions", "timezone")
PROJECT_SETTINGS = ("timezone", "dimensions", "ingest_rate_limit", "huge_cap_tokens")


def project_settings_update(*, project, values: dict, actor) -> list[str]:
    """Apply the changed settings; when one that shapes the rollups changed, mark every hour
    with events dirty so the next refresh rebuilds them. Returns the names that changed."""
    changed = [name for name in PROJECT_SETTINGS if name in values and getattr(project, name) != values[name]]
    if not changed:
        return []
    before = {name: getattr(project, name) for name in changed}
    with transaction.atomic():
        for name in changed:
            setattr(project, name, values[name])
        project.full_clean()
        project.save(update_fields=changed)
        audit_record(project=project, actor=actor, action="update", target_type="project_settings",
                     target_id=project.slug, before=before, after={name: values[name] for name in changed})
        if any(name in ROLLUP_SETTINGS for name in changed):
            # A new timezone cuts days on other midnights: old-zone day rows must go, not linger.
            project_mark_all_dirty(project=project, drop_days="timezone" in changed)
    return changed

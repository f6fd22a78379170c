"""Feature writes: the settings a person changes (from the feature page or
`PATCH /api/v1/features/{name}`), audit logged. Features themselves are created by ingest."""

from django.db import transaction

from costwatch.projects.services import audit_record

from .models import Feature

FEATURE_SETTINGS = ("expected_pro_share", "muted")


def feature_settings_update(*, feature, changes: dict, actor=None, actor_label: str = ""):
    """Change a feature's expected_pro_share / muted and record it in the audit log.

    `changes` holds already-validated values for some of FEATURE_SETTINGS; returns the feature.
    """
    changes = {name: value for name, value in changes.items() if name in FEATURE_SETTINGS}
    before = {name: getattr(feature, name) for name in changes}
    if not changes or before == changes:
        return feature
    with transaction.atomic():
        Feature.objects.filter(pk=feature.pk).update(**changes)
        for name, value in changes.items():
            setattr(feature, name, value)
        audit_record(project=feature.project, actor=actor, actor_label=actor_label, action="update",
                     target_type="feature", target_id=feature.name, before=before, after=changes)
    return feature

# An index on (project_id, id): the rollup refresh finds a project's new batches by id range
# (docs/rollups.md#keeping-them-fresh); through the primary key alone that range holds every
# project's new rows. Built CONCURRENTLY (a non-atomic migration), so ingest is not blocked.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ingest", "0009_event_quality_source"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(fields=["project", "id"], name="event_project_id"),
        ),
    ]

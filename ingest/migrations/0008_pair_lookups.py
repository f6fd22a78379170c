# Partial indexes for the savings pairs' partner look-ups, and the score marks of DirtyHour.
# The indexes are built CONCURRENTLY (a non-atomic migration): on a large events table a plain
# CREATE INDEX would block ingest for the whole build.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ingest", "0007_leases"),
    ]

    operations = [
        migrations.AddField(
            model_name="dirtyhour",
            name="scored_event_id",
            field=models.BigIntegerField(
                blank=True, null=True,
                help_text="The row id of an event that got a score (re-pair it, rebuild nothing)."),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(condition=models.Q(("parent_event_id", ""), _negated=True),
                               fields=["project", "parent_event_id"], name="event_pair_parent"),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(condition=models.Q(models.Q(("request_id", ""), _negated=True),
                                                  ("role__in", ["shadow", "escalation"])),
                               fields=["project", "request_id"], name="event_pair_pro_request"),
        ),
        AddIndexConcurrently(
            model_name="event",
            index=models.Index(condition=models.Q(models.Q(("request_id", ""), _negated=True),
                                                  ("quality__isnull", False), ("role", "primary")),
                               fields=["project", "request_id"], name="event_pair_lite_request"),
        ),
    ]

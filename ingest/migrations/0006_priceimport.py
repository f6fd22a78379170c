from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ingest", "0005_dirtyhour_first_event_id")]

    operations = [
        migrations.CreateModel(
            name="PriceImport",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.TextField()),
                ("started_at", models.DateTimeField()),
                ("finished_at", models.DateTimeField()),
                ("status", models.CharField(choices=[("ok", "OK"), ("failed", "Failed")], max_length=8)),
                ("error", models.TextField(blank=True, default="",
                                           help_text="Why nothing was imported (a failed run).")),
                ("added", models.JSONField(default=list,
                                           help_text="Price series new to the catalogue (from 2000-01-01).")),
                ("changed", models.JSONField(default=list,
                                             help_text="Series with a new period from the import time.")),
                ("unchanged_count", models.PositiveIntegerField(default=0)),
                ("skipped", models.JSONField(default=list, help_text="[label, reason] of rows not imported.")),
                ("repriced_models", models.JSONField(default=list,
                                                     help_text="Models that gained their first price.")),
            ],
            options={"ordering": ["-started_at", "-id"]},
        ),
    ]

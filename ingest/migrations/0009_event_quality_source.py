from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ingest", "0008_pair_lookups")]

    operations = [
        migrations.AddField(
            model_name="event",
            name="quality_source",
            field=models.CharField(
                blank=True, db_default="", default="", max_length=50,
                help_text="Who gave the quality: a score's `source` (docs/savings.md#scores).",
            ),
        ),
    ]

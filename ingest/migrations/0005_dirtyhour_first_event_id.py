from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ingest", "0004_event_fk_without_db_constraint")]

    operations = [
        migrations.AddField(
            model_name="dirtyhour",
            name="first_event_id",
            field=models.BigIntegerField(
                blank=True, help_text="New events at or above this id (null: rebuild the hour).", null=True),
        ),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("metrics", "0009_savings_pair")]

    operations = [
        migrations.AddField(
            model_name="rollupstate",
            name="version",
            field=models.BigIntegerField(
                db_default=0, default=0,
                help_text="Bumped by every refresh that changed rollups or pairs (cache keys).",
            ),
        ),
    ]

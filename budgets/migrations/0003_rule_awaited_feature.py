from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("budgets", "0002_channel_test_requested_at")]

    operations = [
        migrations.AddField(
            model_name="rule",
            name="awaited_feature",
            field=models.CharField(
                blank=True, default="", max_length=100,
                help_text="A feature named before its first event; the first rule cycle after that event binds "
                          "`feature`."),
        ),
    ]

from django.db import migrations


def load(apps, schema_editor):
    from ingest.seed import prices_seed_load

    prices_seed_load(apps.get_model("ingest", "Price"))


class Migration(migrations.Migration):
    dependencies = [("ingest", "0002_prices")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]

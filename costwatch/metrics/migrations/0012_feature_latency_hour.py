"""FeatureLatencyHour: latency and ttft histograms per feature and UTC hour (the features list's
edge hours), filled from the hourly rollup that already holds them."""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0009_event_quality_source'),
        ('metrics', '0011_route_day'),
        ('projects', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='FeatureLatencyHour',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('environment', models.CharField(max_length=50)),
                ('hour', models.DateTimeField()),
                ('latency_hist', django.contrib.postgres.fields.ArrayField(base_field=models.IntegerField(), default=list, size=None)),
                ('ttft_hist', django.contrib.postgres.fields.ArrayField(base_field=models.IntegerField(), default=list, size=None)),
                ('feature', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.feature')),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='projects.project')),
            ],
            options={
                'indexes': [models.Index(fields=['project', 'hour'], name='latencyhour_project_hour')],
                'constraints': [models.UniqueConstraint(fields=('project', 'environment', 'feature', 'hour'), name='featurelatencyhour_key')],
            },
        ),
        migrations.RunSQL(
            """
            INSERT INTO metrics_featurelatencyhour (project_id, environment, feature_id, hour, latency_hist, ttft_hist)
            SELECT project_id, environment, feature_id, hour, cw_hist_sum(latency_hist), cw_hist_sum(ttft_hist)
            FROM metrics_hourlyrollup GROUP BY 1, 2, 3, 4
            """,
            migrations.RunSQL.noop,
        ),
    ]

import django.db.models.deletion
from django.db import migrations, models


BACKFILL = """
INSERT INTO metrics_routeday (project_id, environment, feature_id, model, tier, role, route_reason, day, calls,
    input_tokens, cached_input_tokens, cache_write_input_tokens, output_tokens, reasoning_tokens)
SELECT r.project_id, r.environment, r.feature_id, r.model, r.tier, r.role, r.route_reason,
       (r.hour AT TIME ZONE p.timezone)::date, sum(r.calls), sum(r.input_tokens), sum(r.cached_input_tokens),
       sum(r.cache_write_input_tokens), sum(r.output_tokens), sum(r.reasoning_tokens)
FROM metrics_hourlyrollup r JOIN projects_project p ON p.id = r.project_id
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0009_event_quality_source'),
        ('metrics', '0010_rollupstate_version'),
        ('projects', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='RouteDay',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('environment', models.CharField(max_length=50)),
                ('day', models.DateField()),
                ('model', models.CharField(max_length=200)),
                ('tier', models.CharField(max_length=8)),
                ('role', models.CharField(max_length=12)),
                ('route_reason', models.CharField(blank=True, default='', max_length=50)),
                ('calls', models.BigIntegerField(default=0)),
                ('input_tokens', models.BigIntegerField(default=0)),
                ('cached_input_tokens', models.BigIntegerField(default=0)),
                ('cache_write_input_tokens', models.BigIntegerField(default=0)),
                ('output_tokens', models.BigIntegerField(default=0)),
                ('reasoning_tokens', models.BigIntegerField(default=0)),
                ('feature', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.feature')),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='projects.project')),
            ],
            options={
                'abstract': False,
                'indexes': [models.Index(fields=['project', 'day'], name='routeday_project_day')],
                'constraints': [models.UniqueConstraint(fields=('project', 'environment', 'feature', 'model', 'tier', 'role', 'route_reason', 'day'), name='routeday_key')],
            },
        ),
        # The days already rolled up, from the hourly rollup (by each project's timezone; in a zone
        # whose midnight is not on a UTC hour, the next rebuild of a day makes it exact).
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]

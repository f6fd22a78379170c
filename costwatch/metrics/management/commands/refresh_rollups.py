"""manage.py refresh_rollups [--project SLUG] [--since ISO]"""


from django.core.management.base import BaseCommand

from costwatch.cli import parse_when, project_argument, projects_named
from costwatch.metrics import services


class Command(BaseCommand):
    help = ("Fold dirty hours into the rollups now (what the Celery beat task does every "
            "ROLLUP_REFRESH_SECONDS). With --since, rebuild every hour with events from that time on.")

    def add_arguments(self, parser):
        project_argument(parser)
        parser.add_argument("--since", help="rebuild from this ISO date/datetime (UTC unless an offset is given)")

    def handle(self, *args, project=None, since=None, **options):
        since_at = parse_when(since, option="--since")
        projects = projects_named(project)
        total = services.RefreshResult()
        for each in projects:
            if since_at is not None:
                result = services.RefreshResult(hours_rebuilt=services.rollups_rebuild(project=each, since=since_at))
            else:
                result = services.rollups_refresh_dirty(project=each)
            total += result
            self.stdout.write(f"{each.slug}: {result}")
        self.stdout.write(self.style.SUCCESS(f"refreshed {len(projects)} project(s): {total}"))

"""manage.py refresh_rollups [--project SLUG] [--since ISO]"""


from django.core.management.base import BaseCommand

from costwatch.cli import parse_when
from costwatch.metrics import services
from costwatch.projects.models import Project
from costwatch.projects.selectors import project_by_slug_or_name


class Command(BaseCommand):
    help = ("Fold dirty hours into the rollups now (what the Celery beat task does every "
            "ROLLUP_REFRESH_SECONDS). With --since, rebuild every hour with events from that time on.")

    def add_arguments(self, parser):
        parser.add_argument("--project", help="slug or name of one project (default: all projects)")
        parser.add_argument("--since", help="rebuild from this ISO date/datetime (UTC unless an offset is given)")

    def handle(self, *args, project=None, since=None, **options):
        since_at = parse_when(since, option="--since") if since else None
        projects = [project_by_slug_or_name(project)] if project else list(Project.objects.all())
        total = services.RefreshResult()
        for each in projects:
            if since_at is not None:
                result = services.RefreshResult(hours_rebuilt=services.rollups_rebuild(project=each, since=since_at))
            else:
                result = services.rollups_refresh_dirty(project=each)
            total += result
            self.stdout.write(f"{each.slug}: {result}")
        self.stdout.write(self.style.SUCCESS(f"refreshed {len(projects)} project(s): {total}"))

"""manage.py refresh_rollups [--project SLUG] [--since ISO]"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from costwatch.metrics import services
from costwatch.projects.models import Project
from costwatch.projects.selectors import project_by_slug_or_name


def parse_since(value: str) -> dt.datetime:
    parsed = parse_datetime(value)
    if parsed is None and parse_date(value) is not None:
        parsed = dt.datetime.combine(parse_date(value), dt.time())
    if parsed is None:
        raise CommandError(f"--since: {value!r} is not an ISO date or datetime (e.g. 2026-11-01T00:00:00Z)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = ("Fold dirty hours into the rollups now (what the Celery beat task does every "
            "ROLLUP_REFRESH_SECONDS). With --since, rebuild every hour with events from that time on.")

    def add_arguments(self, parser):
        parser.add_argument("--project", help="slug or name of one project (default: all projects)")
        parser.add_argument("--since", help="rebuild from this ISO date/datetime (UTC unless an offset is given)")

    def handle(self, *args, project=None, since=None, **options):
        since_at = parse_since(since) if since else None
        projects = [project_by_slug_or_name(project)] if project else list(Project.objects.all())
        total = 0
        for each in projects:
            if since_at is not None:
                hours = services.rollups_rebuild(project=each, since=since_at)
            else:
                hours = services.refresh_dirty_rollups(project=each)
            total += hours
            self.stdout.write(f"{each.slug}: {hours} hour(s) rebuilt")
        self.stdout.write(self.style.SUCCESS(f"refreshed {len(projects)} project(s), {total} hour(s)"))

"""`manage.py recompute_costs [--since ISO] [--project SLUG] [--model ID]`: re-price stored events now."""

from django.core.management.base import BaseCommand

from costwatch.cli import parse_when, project_argument, project_named
from ingest.recompute import costs_recompute


class Command(BaseCommand):
    help = ("Re-price stored events with the prices in force at their timestamps (synchronously, in batches) "
            "and mark the hours whose costs changed dirty so rollups rebuild them.")

    def add_arguments(self, parser):
        parser.add_argument("--since", help="Only events at or after this ISO date/datetime (UTC if no offset)")
        project_argument(parser)
        parser.add_argument("--model", action="append", help="Only this model id (repeatable)")

    def handle(self, *args, since=None, project=None, model=None, **options):
        since_at = parse_when(since, option="--since")
        target = project_named(project) if project else None

        def progress(one, result):
            self.stdout.write(f"{one.slug}: {result.events_scanned} scanned, {result.events_changed} changed so far")

        result = costs_recompute(project=target, models=model, since=since_at, progress=progress)
        self.stdout.write(
            f"{result.events_changed} of {result.events_scanned} events re-priced; "
            f"cost before ${result.cost_before:f}, after ${result.cost_after:f}; "
            f"{len(result.hours)} hours marked dirty"
        )

"""`manage.py import_prices PATH [--effective-from ISO]`: LiteLLM's price file into the global catalogue."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from costwatch.cli import parse_when
from ingest.models import PriceImport
from ingest.price_import import prices_import
from ingest.recompute import costs_recompute, models_matching
from ingest.seed import prices_seed_load


class Command(BaseCommand):
    help = ("Import prices from LiteLLM's model_prices_and_context_window.json: new models take effect from "
            "2000-01-01, changed prices start a new period at --effective-from (default now), unchanged ones "
            "add nothing. Prints what it added, changed and skipped, then re-prices affected events.")

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="Path or http(s) URL of model_prices_and_context_window.json")
        parser.add_argument("--effective-from", help="ISO datetime (UTC if no offset) for changed prices [now]")
        parser.add_argument("--no-recompute", action="store_true", help="Do not re-price past events")
        parser.add_argument("--seed", action="store_true", help="Load the bundled seed catalogue instead of PATH")

    def handle(self, *args, path=None, effective_from=None, no_recompute=False, seed=False, **options):
        if seed:
            self.stdout.write(f"seed catalogue: {prices_seed_load()} rows added")
            return
        if not path:
            raise CommandError("give the PATH of a LiteLLM model_prices_and_context_window.json (or --seed)")
        changed_at = parse_when(effective_from, option="--effective-from", default=timezone.now())
        run = prices_import(source=path, now=changed_at, actor_label="import_prices", queue_recompute=False)
        if run.status == PriceImport.FAILED:
            raise CommandError(run.error)
        outcome = run.outcome
        for label in outcome.added:
            self.stdout.write(f"added    {label}")
        for label in outcome.changed:
            self.stdout.write(f"changed  {label} (new period from {changed_at.isoformat()})")
        for label, reason in outcome.skipped:
            self.stdout.write(f"skipped  {label}: {reason}")
        self.stdout.write(f"{len(outcome.added)} added, {len(outcome.changed)} changed, "
                          f"{len(outcome.skipped)} skipped")
        if outcome.touched_models and not no_recompute:
            models = sorted({m for model in outcome.touched_models
                             for m in models_matching(project=None, pattern=model, is_glob=False)})
            result = costs_recompute(models=models) if models else None
            self.stdout.write(f"re-priced {result.events_changed if result else 0} events")

"""`manage.py import_prices PATH [--effective-from ISO]`: LiteLLM's price file into the global catalogue."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from costwatch.cli import parse_when
from ingest.catalogue import SEED_EFFECTIVE_FROM, price_create
from ingest.litellm import litellm_load, litellm_rows
from ingest.models import PRICE_FIELDS, Price
from ingest.recompute import costs_recompute, models_matching
from ingest.seed import prices_seed_load


class Command(BaseCommand):
    help = ("Import prices from LiteLLM's model_prices_and_context_window.json: new models take effect from "
            "2000-01-01, changed prices start a new period at --effective-from (default now), unchanged ones "
            "add nothing. Prints what it added, changed and skipped, then re-prices affected events.")

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="Path to model_prices_and_context_window.json")
        parser.add_argument("--effective-from", help="ISO datetime (UTC if no offset) for changed prices [now]")
        parser.add_argument("--no-recompute", action="store_true", help="Do not re-price past events")
        parser.add_argument("--seed", action="store_true", help="Load the bundled seed catalogue instead of PATH")

    def handle(self, *args, path=None, effective_from=None, no_recompute=False, seed=False, **options):
        if seed:
            self.stdout.write(f"seed catalogue: {prices_seed_load()} rows added")
            return
        if not path:
            raise CommandError("give the PATH of a LiteLLM model_prices_and_context_window.json (or --seed)")
        changed_at = parse_when(effective_from, option="--effective-from") if effective_from else timezone.now()
        try:
            document = litellm_load(path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        if not isinstance(document, dict):
            raise CommandError(f"{path}: expected a JSON object of model name -> prices")
        rows, skipped = litellm_rows(document)
        added, changed, touched = [], [], set()
        with transaction.atomic():
            for row in rows:
                outcome = self._import_row(row, changed_at)
                label = f"{row['model']} [{row['provider'] or 'any'}/{row['service_tier']}]"
                if outcome in ("added", "changed"):
                    (added if outcome == "added" else changed).append(label)
                    touched.add(row["model"])
                else:
                    skipped.append((label, outcome))
        for label in added:
            self.stdout.write(f"added    {label}")
        for label in changed:
            self.stdout.write(f"changed  {label} (new period from {changed_at.isoformat()})")
        for label, reason in skipped:
            self.stdout.write(f"skipped  {label}: {reason}")
        self.stdout.write(f"{len(added)} added, {len(changed)} changed, {len(skipped)} skipped")
        if touched and not no_recompute:
            models = sorted({m for model in touched for m in models_matching(project=None, pattern=model,
                                                                            is_glob=False)})
            result = costs_recompute(models=models) if models else None
            self.stdout.write(f"re-priced {result.events_changed if result else 0} events")

    def _import_row(self, row, changed_at) -> str:
        series = Price.objects.filter(project__isnull=True, model=row["model"], provider=row["provider"],
                                      service_tier=row["service_tier"])
        current = series.filter(effective_from__lte=changed_at).order_by("-effective_from").first()
        if current is None and series.exists():
            return "a future period exists already"
        values = {name: row.get(name) for name in PRICE_FIELDS}
        if current is not None and all(getattr(current, name) == values[name] for name in PRICE_FIELDS):
            return "unchanged"
        effective = SEED_EFFECTIVE_FROM if current is None else changed_at
        tier = current.tier if current is not None else row["tier"]  # a tier edited by hand is kept
        try:
            price_create(project=None, values={**values, "model": row["model"], "provider": row["provider"],
                                               "service_tier": row["service_tier"], "tier": tier,
                                               "effective_from": effective},
                         actor_label="import_prices", queue_recompute=False)
        except ValidationError as exc:
            return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
        return "added" if current is None else "changed"

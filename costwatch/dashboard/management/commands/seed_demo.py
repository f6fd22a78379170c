import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from costwatch.cli import project_argument, project_named
from costwatch.devtools.demo import (
    demo_customer_budget_ensure,
    demo_global_prices_remove,
    demo_prices_ensure,
    generate_batches,
    late_scores_hold,
)
from costwatch.projects.services import audit_record
from ingest.models import Event
from ingest.pricing import event_rows_price
from ingest.scores import MAX_BATCH_SCORES, score_batch_apply
from ingest.services import event_rows_store

LATE_SCORES = dt.timedelta(days=2)  # the shadow scores of the last 2 days arrive after their calls


class Command(BaseCommand):
    help = ("Seed a project with a realistic multi-feature demo workload (Pro-default routing, Lite-to-Pro creep, "
            "uncapped output, triage/escalation/shadow traffic, an unpriced model), written by COPY through "
            "ingest's event_rows_price + event_rows_store, then refresh its rollups.")

    def add_arguments(self, parser):
        project_argument(parser, default="demo", note="; an existing project")
        parser.add_argument("--events", type=int, default=100_000, help="about this many events [100000]")
        parser.add_argument("--days", type=int, default=90, help="spread over this many days up to now [90]")
        parser.add_argument("--seed", type=int, default=7, help="random seed [7]")
        parser.add_argument("--batch-size", type=int, default=50_000)
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--force", action="store_true", help="add demo events even if the project has events")
        group.add_argument("--if-empty", action="store_true",
                           help="do nothing (exit 0) when the project already has events")

    def handle(self, *args, project, events, days, seed, batch_size, force, if_empty, **options):
        if events < 1:
            raise CommandError("--events must be at least 1")
        if not 1 <= days <= 400:
            raise CommandError("--days must be between 1 and 400 (raw retention)")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        project = project_named(project)
        removed = demo_global_prices_remove()
        if removed:
            self.stdout.write(f"removed {removed} global prices an earlier seed_demo added; the calls they priced "
                              "are re-priced from the catalogue")
        if Event.objects.filter(project=project).exists() and not force:
            if if_empty:
                self.stdout.write(f"{project.slug} already has events; nothing seeded")
                return
            raise CommandError(f"project {project.slug!r} already has events; pass --force to add demo events anyway")
        started = time.perf_counter()
        prices = demo_prices_ensure(project=project)
        if not project.dimensions:
            project.dimensions = ["customer", "plan"]
            project.save(update_fields=["dimensions"])
            audit_record(project=project, actor_label="seed_demo", action="update", target_type="project_settings",
                         target_id=project.slug, before={"dimensions": []}, after={"dimensions": project.dimensions})
        end = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
        prefix = f"demo{int(time.time())}" if force else "demo"
        stored = 0
        late = []
        for rows in generate_batches(events=events, days=days, end=end, seed=seed, batch_size=batch_size,
                                     prefix=prefix):
            late += late_scores_hold(rows, since=end - LATE_SCORES)
            event_rows_price(project=project, rows=rows)
            stored += event_rows_store(project=project, rows=rows).accepted
        for start in range(0, len(late), MAX_BATCH_SCORES):  # the judge's scores arrive after the calls
            score_batch_apply(project=project, scores=late[start:start + MAX_BATCH_SCORES])
        written = time.perf_counter()
        from costwatch.metrics.services import rollups_refresh_dirty

        refreshed = rollups_refresh_dirty(project=project)
        self.stdout.write(
            f"seeded {stored} events over {days} days into {project.slug} ({prices} demo price overrides added) in "
            f"{written - started:.1f}s; rollups refreshed ({refreshed}) in {time.perf_counter() - written:.1f}s"
        )
        budget, over = demo_customer_budget_ensure(project=project)
        if budget is not None:
            self.stdout.write(f"added a monthly budget of ${budget.params['amount_usd']} for each customer; "
                              f"{over} is over it")

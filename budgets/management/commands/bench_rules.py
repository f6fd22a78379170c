"""`manage.py bench_rules`: one rule cycle for 1,000 features with 35 days of hourly data.

Seeds a project `bench-rules` with synthetic FeatureHour rows by COPY (never through the
API), plus a few budgets, then times rule cycles and prints the process RSS. Targets
(README.md#benchmarks): cycle < 5 s, RSS < 300 MB. `--customers N` adds a `customer` dimension with N
values (a DimensionDay row per value and day of the month so far, every 100th value over
its budget) and a budget on each of them ({"customer": "*"}): the cycle must stay under
5 s at 100,000 values.
"""

import datetime as dt
import random
import time
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from budgets.models import Alert, Rule
from budgets.rules import params_clean
from budgets.services import rules_evaluate
from costwatch.devtools.bench import bench_project_recreate, rows_copy, rss_mb, worst_time_line
from costwatch.metrics.models import DimensionDay, FeatureHour, HourlyRollup
from costwatch.projects.models import Project
from ingest.models import Feature

SLUG = "bench-rules"


class Command(BaseCommand):
    help = "Time one rule cycle over N features x D days of hourly FeatureHour rows (seeded by COPY)."

    def add_arguments(self, parser):
        parser.add_argument("--features", type=int, default=1000)
        parser.add_argument("--days", type=int, default=35)
        parser.add_argument("--cycles", type=int, default=3, help="Cycles to time (the first one opens alerts).")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--customers", type=int, default=0,
                            help="Values of a `customer` dimension under one per-value budget (0 = none).")

    def handle(self, *args, **options):
        features, days, cycles = options["features"], options["days"], options["cycles"]
        customers = options["customers"]
        if features < 1 or days < 1 or cycles < 1 or customers < 0:
            raise CommandError("--features, --days and --cycles must be >= 1, --customers >= 0")
        now = timezone.now()
        started = time.perf_counter()
        project = self.seed(features=features, days=days, now=now, rng=random.Random(options["seed"]))
        rows = features * days * 24
        self.stdout.write(f"seeded {features} features x {days} days = {rows} FeatureHour rows "
                          f"in {time.perf_counter() - started:.1f} s")
        if customers:
            started = time.perf_counter()
            over, rows = self.seed_customers(project=project, customers=customers, now=now)
            self.stdout.write(f"seeded {customers} customers = {rows} DimensionDay rows, {over} over their "
                              f"per-value budget, in {time.perf_counter() - started:.1f} s")
        timings = []
        for cycle in range(cycles):
            began = time.perf_counter()
            evaluations = rules_evaluate(project=project, now=now + dt.timedelta(minutes=cycle))
            timings.append(time.perf_counter() - began)
            fired = sum(e.verdict.fired for e in evaluations)
            self.stdout.write(f"cycle {cycle + 1}: {timings[-1]:.2f} s, {len(evaluations)} verdicts, {fired} firing, "
                              f"open alerts {Alert.objects.filter(project=project, state='open').count()}")
        rss = rss_mb()
        self.stdout.write(f"{worst_time_line('rule cycle', timings, 5)}; steady state {timings[-1]:.2f} s")
        self.stdout.write(f"process RSS after the cycles: {rss:.0f} MB (target < 300 MB) "
                          f"{'OK' if rss < 300 else 'HIGH'}")

    def seed(self, *, features, days, now, rng) -> Project:
        with transaction.atomic():
            project, ids = bench_project_recreate(slug=SLUG, name="Bench rules", features=features)
            rows_copy(FeatureHour, self.feature_hour_rows(project, ids, days, now, rng))
            current = now.replace(minute=0, second=0, microsecond=0)
            HourlyRollup.objects.create(project=project, feature_id=ids[0], hour=current, environment="production",
                                        model="unpriced-model", tier="unknown", role="primary", status="ok",
                                        calls=3, unpriced_calls=3)
            for i, period in enumerate(["day", "week", "month"]):
                params = params_clean("spend_budget", {"period": period, "amount_usd": "100"})[0]
                Rule.objects.create(project=project, kind="spend_budget", feature_id=ids[i], params=params)
            Rule.objects.create(project=project, kind="spend_budget",
                                params=params_clean("spend_budget", {"period": "month", "amount_usd": "5000"})[0])
        with connection.cursor() as cursor:
            # What autovacuum does to a table in steady state (hint bits, visibility map, statistics);
            # without it the first cycle after a 840k-row COPY pays for that instead.
            vacuum = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"  # tests run in a transaction
            cursor.execute(f"{vacuum} {FeatureHour._meta.db_table}")
        return project

    @staticmethod
    def seed_customers(*, project, customers, now) -> tuple[int, int]:
        """Month-to-date DimensionDay rows for `customers` values: each spends $1 a day, every
        100th $10 a day, against a monthly budget of $5 x the days so far (so only those are over)."""
        project.dimensions = ["customer"]
        project.save(update_fields=["dimensions"])
        feature_id = Feature.objects.filter(project=project).order_by("name").values_list("id", flat=True)[0]
        today = now.astimezone(project.tzinfo).date()
        days = [today.replace(day=d) for d in range(1, today.day + 1)]
        rows = ({"project_id": project.pk, "environment": "production", "feature_id": feature_id, "day": day,
                 "dimension": "customer", "value": f"customer-{index:06d}", "calls": 10, "priced_calls": 10,
                 "cost_usd": Decimal(10 if index % 100 == 0 else 1)}
                for index in range(customers) for day in days)
        with transaction.atomic():
            rows_copy(DimensionDay, rows)
        params = params_clean("spend_budget", {"period": "month", "amount_usd": str(5 * len(days))})[0]
        Rule.objects.create(project=project, kind="spend_budget", dimension={"customer": "*"}, params=params)
        with connection.cursor() as cursor:
            cursor.execute(f"{'ANALYZE' if connection.in_atomic_block else 'VACUUM (ANALYZE)'} "
                           f"{DimensionDay._meta.db_table}")
        return len(range(0, customers, 100)), customers * len(days)

    @staticmethod
    def feature_hour_rows(project, feature_ids, days, now, rng):
        current = now.replace(minute=0, second=0, microsecond=0)
        for index, feature_id in enumerate(feature_ids):
            # Every 20th feature misbehaves in the last day (no cap, more Pro) so alerts open.
            noisy = index % 20 == 0
            base_calls = rng.randint(2, 40)
            for h in range(days * 24):
                hour = current - dt.timedelta(hours=h)
                recent = h <= 24
                calls = base_calls + rng.randint(0, 3)
                pro = calls // (2 if noisy and recent else 5)
                yield {
                    "project_id": project.pk, "environment": "production", "feature_id": feature_id,
                    "hour": hour, "calls": calls, "routed_calls": calls, "primary_calls": calls,
                    "routed_pro_calls": pro, "routed_pro_default_calls": pro // 4,
                    "cap_known_calls": calls, "uncapped_calls": calls // 4 if noisy and recent else 0,
                    "output_tokens": calls * 250, "input_tokens": calls * 900, "priced_calls": calls,
                    "cost_usd": Decimal(calls) * Decimal("0.0015"),
                }

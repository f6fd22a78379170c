"""`manage.py bench_savings`: the savings recommendations for 1,000 features with 35 days of data.

Seeds a project `bench-savings` by COPY (never through the API): per feature and hour a Lite and a
Pro primary HourlyRollup row (every 10th feature's Pro calls also carry a route_reason) and the
RouteDay rows of those hours, per feature and day FeatureDay rows with an output-token histogram, and 40 savings pairs per feature
(a pair in the last 14 days for most). Then times the moves computed afresh each run
(`recommendations_compute`, what a cache miss costs; docs/savings.md). Target
(docs/savings.md): under 2 s.
"""

import datetime as dt
import random
import time
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from costwatch.devtools.bench import bench_project_recreate, rows_copy, rss_mb, worst_time_line
from costwatch.metrics import buckets
from costwatch.metrics.models import FeatureDay, HourlyRollup, RouteDay, SavingsPair
from costwatch.metrics.selectors.recommendations import recommendations_compute
from costwatch.metrics.services.sql import ROUTE_DAY_FROM_HOURS
from costwatch.projects.models import Project
from ingest.models import Price

SLUG = "bench-savings"
LITE, PRO = "bench-lite", "bench-pro"


class Command(BaseCommand):
    help = "Time the savings recommendations over N features x D days of rollups and pairs (seeded by COPY)."

    def add_arguments(self, parser):
        parser.add_argument("--features", type=int, default=1000)
        parser.add_argument("--days", type=int, default=35)
        parser.add_argument("--runs", type=int, default=3)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, features, days, runs, seed, **options):
        if features < 1 or days < 1 or runs < 1:
            raise CommandError("--features, --days and --runs must be >= 1")
        now = timezone.now()
        started = time.perf_counter()
        project = self.seed(features=features, days=days, now=now, rng=random.Random(seed))
        self.stdout.write(f"seeded {features} features x {days} days in {time.perf_counter() - started:.1f} s")
        timings = []
        for _ in range(runs):
            began = time.perf_counter()
            results = recommendations_compute(project=project, now=now)
            timings.append(time.perf_counter() - began)
            statuses = {}
            for r in results:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            self.stdout.write(f"run: {timings[-1]:.2f} s, {len(results)} moves {statuses}")
        self.stdout.write(f"{worst_time_line('recommendations', timings, 2)}; process RSS {rss_mb():.0f} MB")

    def seed(self, *, features, days, now, rng) -> Project:
        with transaction.atomic():
            project, ids = bench_project_recreate(slug=SLUG, name="Bench savings", features=features)
            for model, tier, inp, out in ((LITE, "lite", "0.10", "0.40"), (PRO, "pro", "2.00", "8.00")):
                Price.objects.get_or_create(model=model, project=project, defaults={
                    "tier": tier, "input_per_mtok": Decimal(inp), "output_per_mtok": Decimal(out),
                    "effective_from": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)})
            current = now.replace(minute=0, second=0, microsecond=0)
            rows_copy(HourlyRollup, self.hourly_rows(project, ids, days, current, rng))
            self.route_days_from_hours(project, days, current)
            rows_copy(FeatureDay, self.day_rows(project, ids, days, now))
            rows_copy(SavingsPair, self.pair_rows(project, ids, now, rng))
        with connection.cursor() as cursor:  # fresh statistics, as autovacuum would give them
            for model in (HourlyRollup, RouteDay, FeatureDay, SavingsPair):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
        return project

    @staticmethod
    def hourly_rows(project, ids, days, current, rng):
        for index, feature_id in enumerate(ids):
            calls = rng.randint(5, 40)
            for h in range(days * 24):
                hour = current - dt.timedelta(hours=h)
                for model, tier, share, reason in ((LITE, "lite", 0.8, ""),
                                                   (PRO, "pro", 0.2, "hard" if index % 10 == 0 else "")):
                    n = max(1, int(calls * share))
                    yield {"project_id": project.pk, "hour": hour, "environment": "production",
                           "feature_id": feature_id, "model": model, "tier": tier, "role": "primary",
                           "status": "ok", "route_reason": reason, "calls": n, "input_tokens": n * 900,
                           "output_tokens": n * 250, "priced_calls": n,
                           "cost_usd": Decimal(n) * (Decimal("0.0038") if tier == "pro" else Decimal("0.0002"))}

    @staticmethod
    def route_days_from_hours(project, days, current):
        """RouteDay from the seeded hours, with the refresh's own statement (whole days are read there)."""
        first = (current - dt.timedelta(days=days + 1)).date()
        params = {"project_id": project.pk, "tz": project.timezone, "low": current - dt.timedelta(days=days + 2),
                  "high": current + dt.timedelta(hours=1),
                  "days": [first + dt.timedelta(days=d) for d in range(days + 3)]}
        with connection.cursor() as cursor:
            cursor.execute(ROUTE_DAY_FROM_HOURS, params)

    @staticmethod
    def day_rows(project, ids, days, now):
        hist = [0] * buckets.N_BUCKETS
        for value, count in ((250, 995), (4000, 5)):
            hist[buckets.bucket_index(value)] += count
        for feature_id in ids:
            for d in range(days):
                for tier in ("lite", "pro"):
                    yield {"project_id": project.pk, "environment": "production", "feature_id": feature_id,
                           "tier": tier, "role": "primary", "day": (now - dt.timedelta(days=d)).date(),
                           "calls": 1000, "output_tokens": 995 * 250 + 5 * 4000, "output_tokens_hist": hist}

    @staticmethod
    def pair_rows(project, ids, now, rng):
        event_id = 0
        for index, feature_id in enumerate(ids):
            age = 20 if index % 7 == 0 else 1  # every 7th feature's evidence is stale
            for _ in range(40 if index % 5 else 12):  # every 5th feature has thin evidence
                event_id += 2
                ts = now - dt.timedelta(days=age + rng.random() * 5)
                pro_q = rng.uniform(0.6, 0.95)
                yield {"project_id": project.pk, "feature_id": feature_id, "environment": "production",
                       "kind": "shadow", "pro_event_id": event_id, "lite_event_id": event_id + 1, "lite_ts": ts,
                       "pro_ts": ts, "lite_model": LITE, "route_reason": "",
                       "lite_quality": min(1.0, max(0.0, pro_q + rng.gauss(-0.01 * (index % 3), 0.03))),
                       "pro_quality": pro_q, "lite_latency_ms": 300, "pro_latency_ms": 1100}

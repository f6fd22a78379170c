"""manage.py bench_dashboard: time of each dashboard page and read API call at scale, from the client.

Seeds a separate bench project with N demo events over 90 days in --features features (seed_demo's
generator, its features split into variants; priced by ingest's event_rows_price and written by COPY
through event_rows_store, never the HTTP API), rebuilds its rollups, then starts gunicorn on a
free local port and times each URL from an HTTP client (logged in with a session cookie, the
full response read): many iterations each, printing p50/p95 per URL against the 150 ms p95
target. `--in-process` times through Django's test Client instead (server time only).
"""

import datetime as dt
import math
import statistics
import time
import zlib
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from costwatch.devtools.bench import (
    bench_project_ensure,
    gunicorn_start,
    load_arguments,
    options_positive,
    percentile,
)
from costwatch.metrics import selectors, services
from costwatch.projects.models import Membership, Project
from ingest.models import Event

TARGET_P95_MS = 150.0
BENCH_SLUG = "bench-dashboard"
PROJECT_HELP = (f"slug of the bench project [{BENCH_SLUG}]; created if missing, and its events and rollups "
                "replaced unless --reuse")
ANALYZED = ["ingest_event", "metrics_hourlyrollup", "metrics_featurehour", "metrics_featureday", "metrics_modelday",
            "metrics_dimensionday", "metrics_savingspair", "metrics_routeday"]


class Command(BaseCommand):
    help = ("Seed a bench project with --events demo events over --days days (COPY, not the API), refresh its "
            "rollups, then print p50/p95 server time of every dashboard page and read API call (target p95 < "
            "150 ms).")

    def add_arguments(self, parser):
        load_arguments(parser, project=BENCH_SLUG, workers=2,
                       helps={"project": PROJECT_HELP, "workers": "gunicorn workers for the HTTP client [2]"})
        parser.add_argument("--events", type=int, default=10_000_000, help="events to seed [10000000]")
        parser.add_argument("--days", type=int, default=90, help="spread over this many days [90]")
        parser.add_argument("--iterations", type=int, default=40, help="timed requests per URL [40]")
        parser.add_argument("--features", type=int, default=40,
                            help="features of the bench tenant [40]: the demo's six, each split into variants")
        parser.add_argument("--in-process", action="store_true",
                            help="time through Django's test Client in this process (server time), not over HTTP")
        parser.add_argument("--reuse", action="store_true",
                            help="keep the bench project's events and rollups from an earlier run; skip seeding")

    def handle(self, *args, events, days, iterations, reuse, project, features, in_process, workers, **options):
        options_positive({"events": events, "iterations": iterations, "features": features, "workers": workers})
        if not 1 <= days <= 90:
            raise CommandError("--days must be between 1 and 90 (events older than INGEST_MAX_AGE_DAYS)")
        user, created = get_user_model().objects.get_or_create(username="bench-viewer")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        bench = self._project(project, user)
        if reuse and Event.objects.filter(project=bench).exists():
            self.stdout.write(f"reusing the events and rollups of {bench.slug}")
        else:
            self._seed(bench, events=events, days=days, features=features)
        self._analyze()
        self.stdout.write(f"{bench.features.count()} features; timing "
                          + ("in process (Django test Client, server time)" if in_process
                             else f"from an HTTP client against gunicorn ({workers} workers), full response"))
        results = (self._measure(bench, user, iterations) if in_process
                   else self._measure_http(bench, user, iterations, workers))
        self._report(results, iterations)
        self._report_uncached(bench)

    def _project(self, slug, user) -> Project:
        # By slug only: seeding replaces the project's events, so a name must never pick a real project.
        bench, _ = bench_project_ensure(slug, name=f"Bench {slug}", owner=user, by_name=False)
        Membership.objects.get_or_create(project=bench, user=user, defaults={"role": Membership.ADMIN})
        return bench

    def _seed(self, bench, *, events, days, features):
        from costwatch.devtools.demo import demo_prices_ensure, generate_batches
        from ingest.pricing import event_rows_price
        from ingest.services import event_rows_store

        started = time.perf_counter()
        with connection.cursor() as cursor:
            for table in ["ingest_dirtyhour", *ANALYZED[::-1]]:
                cursor.execute(f"DELETE FROM {table} WHERE project_id = %s", [bench.pk])
        demo_prices_ensure(project=bench)
        bench.dimensions = ["customer", "plan"]
        bench.save(update_fields=["dimensions"])
        end = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
        stored = 0
        for rows in generate_batches(events=events, days=days, end=end, seed=11, batch_size=50_000,
                                     prefix="bench"):
            _split_features(rows, features)
            event_rows_price(project=bench, rows=rows)
            stored += event_rows_store(project=bench, rows=rows, mark_dirty=False).accepted
            self.stderr.write(f"  seeded {stored} events ({stored / (time.perf_counter() - started):,.0f}/s)")
        seeded = time.perf_counter()
        hours = services.rollups_rebuild(project=bench)
        rebuilt = time.perf_counter()
        self.stdout.write(f"seeded {stored} events over {days} days in {seeded - started:.1f}s "
                          f"({stored / (seeded - started):,.0f} events/s); rebuilt rollups of {hours} hours in "
                          f"{rebuilt - seeded:.1f}s")

    def _analyze(self):
        with connection.cursor() as cursor:
            for table in ANALYZED:
                cursor.execute(f"ANALYZE {table}")

    def _urls(self, bench) -> list[str]:
        features = selectors.feature_metrics(project=bench, start=timezone.now() - dt.timedelta(days=30),
                                             end=timezone.now())
        top = features[0]["feature"] if features else "none"
        pages = []
        for name, kwargs in (("dashboard:overview", {}), ("dashboard:features", {}),
                             ("dashboard:feature", {"name": top}), ("dashboard:models", {}),
                             ("dashboard:customers", {}), ("dashboard:savings", {}), ("dashboard:settings", {}),
                             ("budgets:alerts", {}), ("budgets:rules", {}), ("budgets:channels", {}),
                             ("ingest:prices", {}), ("projects:keys", {})):
            try:
                pages.append(reverse(name, kwargs={"slug": bench.slug, **kwargs}))
            except NoReverseMatch:
                continue
        api = [
            ("features", {}),
            ("features", {"attr.customer": "acme"}),
            ("timeseries", {"metric": "cost", "granularity": "day"}),
            ("timeseries", {"metric": "pro_share", "granularity": "day", "feature": top, "group_by": "tier"}),
            ("timeseries", {"metric": "calls", "granularity": "hour", "feature": top,
                            "start": (timezone.now() - dt.timedelta(days=7)).date().isoformat()}),
            ("timeseries", {"metric": "cost", "granularity": "hour", "feature": top, "group_by": "tier",
                            "start": (timezone.now() - dt.timedelta(days=7)).date().isoformat()}),
            ("timeseries", {"metric": "cost", "granularity": "day", "group_by": "model"}),
            ("models", {}),
            ("breakdown", {"dimension": "customer"}),
            ("recommendations", {}),
            ("budget-status", {"feature": top}),
            ("alerts", {}),
            ("rules", {}),
            ("channels", {}),
            ("recommendations", {"window": "7d", "status": "recommended"}),
        ]
        return pages + [f"/api/v1/{path}?{urlencode({'project': bench.slug, **query})}" for path, query in api]

    def _measure_http(self, bench, user, iterations, workers) -> list[dict]:
        """Each URL from an HTTP client over loopback: connect, request, read the whole body."""
        import requests
        from django.conf import settings

        client = Client()
        client.force_login(user)  # a session in the database, which gunicorn reads
        session = requests.Session()
        session.headers.update({"Cookie": f"{settings.SESSION_COOKIE_NAME}="
                                          f"{client.cookies[settings.SESSION_COOKIE_NAME].value}",
                                "X-Forwarded-Proto": "https"})  # as behind a TLS proxy: no SSL redirect
        server, base_url = gunicorn_start(workers=workers)
        results = []
        try:
            for url in self._urls(bench):
                times, status = [], None
                for i in range(iterations + 2):
                    started = time.perf_counter()
                    # Not streamed: requests returns once the whole body has been read.
                    response = session.get(base_url + url, allow_redirects=False, timeout=120)
                    elapsed = (time.perf_counter() - started) * 1000
                    status = response.status_code
                    if status != 200:
                        break
                    if i >= 2:  # two warm-up requests per URL (template and plan caches, both workers)
                        times.append(elapsed)
                results.append({"url": url, "status": status, "times": times})
        finally:
            server.terminate()
            server.wait(timeout=30)
        return results

    def _measure(self, bench, user, iterations) -> list[dict]:
        if not hasattr(mail, "outbox"):  # not already inside a test run
            setup_test_environment()  # lets the test Client's 'testserver' host through ALLOWED_HOSTS
        client = Client(raise_request_exception=False)  # a broken page is reported, not fatal
        client.force_login(user)
        results = []
        for url in self._urls(bench):
            times, status = [], None
            for i in range(iterations + 2):
                started = time.perf_counter()
                response = client.get(url, secure=True)
                elapsed = (time.perf_counter() - started) * 1000
                status = response.status_code
                if status != 200:
                    break
                if i >= 2:  # two warm-up requests (template and plan caches)
                    times.append(elapsed)
            results.append({"url": url, "status": status, "times": times})
        return results

    def _report(self, results, iterations):
        width = max(len(r["url"]) for r in results)
        self.stdout.write(f"{'url':<{width}}  {'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}  target")
        met_all = True
        for result in results:
            times = result["times"]
            if result["status"] != 200 or not times:
                met_all = False
                self.stdout.write(f"{result['url']:<{width}}  HTTP {result['status']}: not measured  FAIL")
                continue
            p50, p95 = statistics.median(times), percentile(times, 0.95)
            met = p95 < TARGET_P95_MS
            met_all &= met
            self.stdout.write(f"{result['url']:<{width}}  {p50:8.1f}  {p95:8.1f}  {max(times):8.1f}  "
                              f"{'met' if met else 'MISSED'}")
        verdict = "MET" if met_all else "NOT MET"
        self.stdout.write(f"p95 < {TARGET_P95_MS:.0f} ms on every URL ({iterations} requests each): {verdict}")

    def _report_uncached(self, bench, runs=5):
        """The Savings page and recommendations are cached per data version (docs/savings.md), so the
        timed requests above are mostly hits; this times what a refresh that changed data costs the
        next request: the moves computed afresh, in process."""
        from costwatch.metrics.selectors.recommendations import recommendations_compute

        times, moves = [], []
        for _ in range(runs):
            started = time.perf_counter()
            moves = recommendations_compute(project=bench)
            times.append((time.perf_counter() - started) * 1000)
        self.stdout.write(f"recommendations computed afresh (a cache miss, in process): p50 "
                          f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms over {runs} runs, "
                          f"{len(moves)} moves")


def _split_features(rows: list[dict], features: int) -> None:
    """Spread the demo's features over `features` names (each demo feature split into variants
    `name-1`, `name-2`, ...; every event keeps its own feature's traffic shape), so the bench tenant
    has as many features as asked. A variant is picked from the event id, so a re-seed agrees."""
    from costwatch.devtools.demo import FEATURES

    base = len(FEATURES)
    if features <= base:
        return
    variants = math.ceil(features / base)
    names = sorted({f.name for f in FEATURES})
    allowed = {name: [v for v in range(variants) if names.index(name) + v * base < features] for name in names}
    for row in rows:
        choices = allowed[row["feature"]]
        variant = choices[zlib.crc32(row["event_id"].encode()) % len(choices)]
        if variant:
            row["feature"] = f"{row['feature']}-{variant}"

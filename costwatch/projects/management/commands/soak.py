"""`manage.py soak`: sustained ingest through gunicorn with a real Celery worker + beat, then checks.

1. Creates (or reuses) the soak project and an ingest key; starts gunicorn on a free loopback
   port and ONE Celery worker with embedded beat (refresh every 2 s, rules every 5 s, delivery
   sweep every 2 s) on the same database; broker = CELERY_BROKER_URL, else the filesystem
   broker in a temp folder.
2. `--clients` processes send about `--rate` events/s for `--seconds` (several features, Lite
   and Pro models, one unpriced model, ~2% of batches re-sent whole, ~1% bad events inside good
   batches, timestamps over the last 48 h), counting what the API answered.
3. Samples RSS of the gunicorn workers and the Celery worker every few seconds.
4. Waits until the rollups caught up (no DirtyHour left), then checks: stored == unique good
   sent == accepted, duplicates == good events re-sent, rejected == bad events sent, no event
   stored twice, HourlyRollup sums == a direct aggregate of raw events (per hour), a rule cycle
   ran and opened the unpriced_traffic alert, no ERROR/Traceback in the worker log, RSS under
   the 300 MB target (README.md#benchmarks). Exits non-zero if any check fails; stops both servers on any exit; deletes
   the soak data unless --keep.
"""

import contextlib
import datetime as dt
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction

from budgets.models import Alert, ProjectRulesState
from costwatch.devtools import database_url, soak
from costwatch.devtools.bench import (
    bench_project_ensure,
    gunicorn_start,
    load_arguments,
    options_positive,
    percentile,
)
from costwatch.projects.services import api_key_issue
from ingest.event_fields import MAX_BATCH_EVENTS
from ingest.models import DirtyHour

ROOT = Path(settings.BASE_DIR)
INTERVALS = {"ROLLUP_REFRESH_SECONDS": "2", "RULES_INTERVAL_SECONDS": "5", "DELIVERY_SWEEP_SECONDS": "2"}
FRESHNESS_TARGET_S = 60  # the read API shows an acknowledged event within 60 s at p95
USAGE_TABLES = ["ingest_event", "ingest_dirtyhour", "metrics_hourlyrollup", "metrics_featurehour",
                "metrics_featureday", "metrics_modelday", "metrics_dimensionday"]


@contextlib.contextmanager
def _environ(values: dict):
    """Set environment variables for the servers started inside (bench_ingest's gunicorn reads os.environ)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Command(BaseCommand):
    help = ("Soak run: sends events at --rate for --seconds through gunicorn while one Celery worker with "
            "beat refreshes rollups and runs rules, then checks stored events, dedup, rollups == raw "
            "aggregate, rule cycles, worker log and RSS; exits non-zero if any check fails.")

    def add_arguments(self, parser):
        load_arguments(parser, project="soak", workers=2, clients=4, batch=0, helps={
            "batch": "Events per request [0 = about 4 requests/s per client, 10-1000]",
            "keep": "Keep the soak's data afterwards (else its events go, and the project if the run created it)"})
        parser.add_argument("--seconds", type=float, default=300, help="How long to send [300]")
        parser.add_argument("--rate", type=int, default=5000, help="Target events/s over all clients [5000]")
        parser.add_argument("--sample-seconds", type=float, default=3, help="RSS sampling interval [3]")
        parser.add_argument("--catchup-seconds", type=float, default=180,
                            help="Deadline for rollups and a rule cycle to catch up after the load [180]")
        parser.add_argument("--spread-seconds", type=float, default=60,
                            help="Timestamps spread over this many seconds before now [60: near now; up to "
                                 f"{soak.SPREAD_SECONDS} for a 48 h backfill]")
        parser.add_argument("--probe-seconds", type=float, default=5,
                            help="Send a freshness probe event this often and time until the read API shows it [5]")

    def handle(self, *args, **opts):
        self._check_options(opts)
        project, created = bench_project_ensure(opts["project"])
        run_id = f"soak{uuid.uuid4().hex[:8]}"
        workdir = Path(tempfile.mkdtemp(prefix="costwatch-soak-"))
        server = worker = sampler = probe = None
        failed = True
        try:
            key = api_key_issue(project=project, scopes=["ingest"], name=f"soak {run_id}", actor_label="soak").plaintext
            read_key = api_key_issue(project=project, scopes=["read"], name=f"soak {run_id} reads",
                                     actor_label="soak").plaintext
            env = self._server_env(workdir)
            with _environ(env):
                server, base_url = gunicorn_start(workers=opts["workers"])
            worker = self._start_worker(workdir, env)
            self.stdout.write(f"soak {run_id}: project {project.slug}, gunicorn {base_url} ({opts['workers']} workers), "
                              f"celery worker + beat (broker {self._broker_label(env)}), log {workdir / 'worker.log'}")
            self._note_backlog(project)
            sampler = soak.RssSampler(gunicorn_pid=server.pid, celery_pid=worker.pid, interval=opts["sample_seconds"])
            sampler.sample()
            sampler.start()
            probe = soak.FreshnessProbe(base_url=base_url, ingest_key=key, read_key=read_key, run_id=run_id,
                                        interval=opts["probe_seconds"])
            probe.start()
            tally, elapsed = self._send(base_url, key, run_id, opts)
            probe.sending.clear()
            catchup = self._wait_caught_up(project, worker, opts["catchup_seconds"], probe)
            probe.stopped.set()
            sampler.stop()
            checks = self._checks(project, run_id, tally, workdir, sampler, catchup)
            self._report(opts, tally, elapsed, sampler, checks, (workdir / "worker.log").read_text(errors="replace"),
                         probe, catchup, project)
            failed = not all(check.ok for check in checks)
        except KeyboardInterrupt:
            self.stderr.write("soak: interrupted; stopping gunicorn and the worker"
                              + ("" if opts["keep"] else ", deleting the soak data"))
            raise CommandError("soak: interrupted before the checks") from None
        finally:
            if sampler is not None and sampler.is_alive():
                sampler.stop()
            if probe is not None:
                probe.stopped.set()
            self._stop(worker, server)
            self._cleanup(project, created, run_id, opts["keep"])
            if failed:
                self.stderr.write(f"worker log kept in {workdir / 'worker.log'}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        if failed:
            raise CommandError("soak: some checks FAILED (see above)")

    # --- setup -------------------------------------------------------------------------------

    def _check_options(self, opts):
        options_positive(opts, ("seconds", "rate", "clients", "workers", "sample_seconds", "catchup_seconds",
                                "spread_seconds", "probe_seconds"))
        if opts["spread_seconds"] > soak.SPREAD_SECONDS:
            raise CommandError(f"--spread-seconds must be at most {soak.SPREAD_SECONDS} (48 h)")
        if not 0 <= opts["batch"] <= MAX_BATCH_EVENTS:
            raise CommandError(f"--batch must be between 1 and {MAX_BATCH_EVENTS} (the API's limit per request), "
                               "or 0 for auto")
        if not opts["batch"]:
            opts["batch"] = max(10, min(MAX_BATCH_EVENTS, round(opts["rate"] / opts["clients"] / 4)))

    def _server_env(self, workdir: Path) -> dict:
        env = {"DATABASE_URL": database_url(), **INTERVALS}
        if not os.environ.get("CELERY_BROKER_URL"):
            env["COSTWATCH_DATA_DIR"] = str(workdir)  # settings put the filesystem broker under it
        return env

    def _broker_label(self, env):
        return "from CELERY_BROKER_URL" if "COSTWATCH_DATA_DIR" not in env else f"filesystem in {env['COSTWATCH_DATA_DIR']}"

    def _start_worker(self, workdir: Path, env: dict) -> subprocess.Popen:
        log_path = workdir / "worker.log"
        full_env = {**os.environ, **env,
                    "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "costwatch.settings")}
        args = [sys.executable, "-m", "celery", "-A", "costwatch", "worker", "--beat", "--loglevel=INFO",
                "--pool=solo", "--without-mingle", "--without-gossip", "-n", f"soak-{os.getpid()}@%h",
                "--schedule", str(workdir / "celerybeat-schedule")]
        with open(log_path, "w") as log:
            worker = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                self._stop(worker, None)
                raise CommandError(f"the Celery worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        return worker

    def _note_backlog(self, project):
        """The worker refreshes every project: say so when others have pending dirty hours (e.g. after a bench)."""
        others = DirtyHour.objects.exclude(project=project).count()
        if others:
            self.stdout.write(f"note: {others} dirty hours of other projects are pending; this worker refreshes "
                              "them too, which delays the soak project's refreshes and rule cycles")

    # --- load ----------------------------------------------------------------------------------

    def _send(self, base_url, key, run_id, opts) -> tuple[soak.ClientTally, float]:
        rate_per_client = opts["rate"] / opts["clients"]
        connections.close_all()  # never hand a live connection to forked processes
        context = multiprocessing.get_context("fork")
        started = time.time()
        deadline = started + opts["seconds"]
        work = [(f"{base_url}/api/v1/events", key, run_id, client, rate_per_client, opts["batch"], deadline,
                 opts["spread_seconds"]) for client in range(opts["clients"])]
        # Clients ignore SIGINT: on Ctrl-C only this process stops, and it terminates them (a client
        # killed by KeyboardInterrupt mid-task would leave pool.map waiting forever).
        pool = context.Pool(opts["clients"], initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
        try:
            results = pool.map_async(soak.send_paced, work).get(timeout=opts["seconds"] + 600)
        finally:
            pool.terminate()
            pool.join()
        elapsed = time.time() - started
        tally = soak.ClientTally()
        for result in results:
            tally.merge(result)
        return tally, elapsed

    def _wait_caught_up(self, project, worker, timeout, probe) -> dict:
        """Poll until no DirtyHour is left for the project, the read API shows every acknowledged
        probe and a rule cycle ran on the rolled-up data."""
        started = time.monotonic()
        deadline = started + timeout
        rollups_seconds = rules_seconds = probes_seconds = None
        while time.monotonic() < deadline and worker.poll() is None:
            if rollups_seconds is None and not DirtyHour.objects.filter(project=project).exists():
                rollups_seconds = time.monotonic() - started
            if probes_seconds is None and len(probe.seen) >= len(probe.acked):
                probes_seconds = (probe.seen[-1] if probe.seen else time.monotonic()) - started
            if rules_seconds is None and rollups_seconds is not None and self._unpriced_alert(project) is not None:
                rules_seconds = time.monotonic() - started
            if None not in (rollups_seconds, rules_seconds, probes_seconds):
                break
            time.sleep(0.25)
        return {"rollups_seconds": rollups_seconds, "rules_seconds": rules_seconds,
                "probes_seconds": probes_seconds}

    def _unpriced_alert(self, project):
        return Alert.objects.filter(project=project, kind="unpriced_traffic", numbers__models__has_key=soak.UNPRICED_MODEL,
                                    ).exclude(state=Alert.RESOLVED).first()

    # --- checks and report -----------------------------------------------------------------------

    def _checks(self, project, run_id, tally, workdir, sampler, catchup) -> list[soak.Check]:
        Check = soak.Check
        stored, twice = soak.stored_counts(project_id=project.pk, run_id=run_id)
        comparison = soak.rollup_comparison(project_id=project.pk)
        raw, rollup = comparison["raw"], comparison["rollup"]
        log_text = (workdir / "worker.log").read_text(errors="replace")
        problems = soak.worker_log_problems(log_text)
        alert = self._unpriced_alert(project)
        peaks = {name: sampler.figures(name)[1] for name in ("web_max", "celery_max")}
        return [
            Check("requests answered", tally.failed_requests == 0,
                  f"{tally.failed_requests} failed of {sum(tally.statuses.values())}"),
            Check("stored == unique good sent == accepted", stored == tally.good_unique == tally.accepted,
                  f"stored {stored}, unique good sent {tally.good_unique}, accepted {tally.accepted}"),
            Check("duplicates == good events re-sent", tally.duplicates == tally.retried_good,
                  f"duplicates {tally.duplicates}, re-sent good {tally.retried_good} in {tally.retries} retried batches"),
            Check("rejected == bad events sent", tally.rejected == tally.bad_sent,
                  f"rejected {tally.rejected}, bad sent {tally.bad_sent}"),
            Check("no event stored twice", twice == 0, f"{twice} event_ids stored more than once"),
            Check("rollups caught up", catchup["rollups_seconds"] is not None,
                  "no DirtyHour left after {:.1f} s".format(catchup["rollups_seconds"])
                  if catchup["rollups_seconds"] is not None else "DirtyHour rows still left at the deadline"),
            Check("HourlyRollup == raw aggregate", not comparison["mismatched_hours"] and raw == rollup,
                  f"{comparison['hours']} hours, {len(comparison['mismatched_hours'])} mismatched; "
                  f"calls {rollup['calls']}/{raw['calls']}, input tokens {rollup['input_tokens']}/{raw['input_tokens']}, "
                  f"output tokens {rollup['output_tokens']}/{raw['output_tokens']}, cost {rollup['cost_usd']}/"
                  f"{raw['cost_usd']} USD, unpriced {rollup['unpriced_calls']}/{raw['unpriced_calls']} (rollup/raw)"),
            Check("FeatureHour == raw aggregate",
                  comparison["feature_hour"] == {"calls": raw["calls"], "cost_usd": raw["cost_usd"]},
                  f"calls {comparison['feature_hour']['calls']}/{raw['calls']}, "
                  f"cost {comparison['feature_hour']['cost_usd']}/{raw['cost_usd']} USD"),
            Check("rule cycle ran", ProjectRulesState.objects.filter(project=project).exists()
                  and f"rules: project {project.slug} evaluated" in log_text and alert is not None,
                  f"{log_text.count(f'rules: project {project.slug} evaluated')} cycles logged; unpriced_traffic alert "
                  + (f"#{alert.pk} {alert.state}: {alert.message}" if alert else "NOT opened")),
            Check("worker log clean", not problems,
                  f"{len(problems)} ERROR/Traceback lines" + (f", first: {problems[0][:200]}" if problems else "")),
            Check(f"RSS < {soak.RSS_LIMIT_MB} MB per process", all(v < soak.RSS_LIMIT_MB for v in peaks.values()),
                  f"peak gunicorn worker {peaks['web_max']:.0f} MB, celery process {peaks['celery_max']:.0f} MB"),
        ]

    def _report(self, opts, tally, elapsed, sampler, checks, worker_log, probe, catchup, project):
        out = self.stdout.write
        unique = tally.events_sent - tally.retries * opts["batch"]
        latencies_ms = [s * 1000 for s in tally.latencies]
        out(f"sent: {tally.events_sent} events in {tally.batches + tally.retries} requests of {opts['batch']} "
            f"({tally.batches} batches, {tally.retries} re-sent) from {opts['clients']} client processes "
            f"in {elapsed:.1f} s")
        out(f"answers: accepted {tally.accepted}, duplicates {tally.duplicates}, rejected {tally.rejected}; "
            "HTTP " + ", ".join(f"{code}: {n}" for code, n in sorted(tally.statuses.items()))
            + f"; 429s: {tally.statuses.get('429', 0)}")
        out("figures:")
        rows = [
            ("events/s sent (target)", f"{unique / elapsed:,.0f} ({opts['rate']:,})"),
            ("events/s accepted", f"{tally.accepted / elapsed:,.0f}"),
            ("batch POST latency p50 / p95 / max", f"{percentile(latencies_ms, 0.5):.0f} / "
             f"{percentile(latencies_ms, 0.95):.0f} / {max(latencies_ms, default=0):.0f} ms"),
        ]
        for name, label in (("web_max", "RSS largest gunicorn worker"), ("web_total", "RSS all gunicorn workers"),
                            ("celery_max", "RSS largest celery process"),
                            ("celery_total", "RSS celery worker + beat")):
            start, peak, end = sampler.figures(name)
            rows.append((f"{label} start / peak / end", f"{start:.0f} / {peak:.0f} / {end:.0f} MB ({end - start:+.0f})"))
        durations, expired = soak.worker_task_stats(worker_log)
        for task in ("refresh_project_rollups", "evaluate_project"):
            seconds = durations.get(task, [])
            rows.append((f"worker {task} runs, all projects (p50 / max)", f"{len(seconds)} ({percentile(seconds, 0.5):.2f} / "
                                                            f"{max(seconds, default=0):.2f} s)"))
        rows.append(("worker tasks expired in the queue", str(expired)))
        lags = probe.lags()
        met = lags and len(probe.seen) == len(probe.acked) and percentile(lags, 0.95) < FRESHNESS_TARGET_S
        rows.append(("freshness lag p50 / p95 / max (read API)",
                     f"{percentile(lags, 0.5):.1f} / {percentile(lags, 0.95):.1f} / {max(lags, default=0):.1f} s over "
                     f"{len(probe.seen)} of {len(probe.acked)} probes (p95 < {FRESHNESS_TARGET_S} s: "
                     f"{'met' if met else 'NOT met'})"))
        caught = catchup["probes_seconds"]
        rows.append(("read API caught up after the load stopped",
                     "not within the deadline" if caught is None else
                     f"{max(caught, 0.0):.1f} s (< {FRESHNESS_TARGET_S} s: {'met' if caught < FRESHNESS_TARGET_S else 'NOT met'})"))
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            out(f"  {name:<{width}}  {value}")
        minutes = soak.refresh_cost_by_minute(worker_log, project_slug=project.slug)
        out(f"refresh cost per 1,000 new events, by minute since the first refresh of {project.slug} "
            "(flat = the refresh grows with new events only):")
        out(f"  {'minute':>6}  {'refreshes':>9}  {'new events':>10}  {'seconds':>8}  {'s per 1,000':>11}")
        for minute, runs, events, seconds in minutes:
            per_thousand = f"{seconds * 1000 / events:11.3f}" if events else f"{'-':>11}"
            out(f"  {minute:>6}  {runs:>9}  {events:>10,}  {seconds:>8.2f}  {per_thousand}")
        if unique < 0.9 * opts["rate"] * elapsed:
            out(f"note: below the target rate: each client sends its next batch when the previous one is answered, "
                f"so at {percentile(latencies_ms, 0.5):.0f} ms per request the server set the pace")
        out("checks:")
        for check in checks:
            out(f"  {'PASS' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        out(f"soak: {'all checks passed' if all(c.ok for c in checks) else 'some checks FAILED'}")

    # --- teardown --------------------------------------------------------------------------------

    def _stop(self, worker, server):
        for proc in (worker, server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in (worker, server):
            if proc is None:
                continue
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def _cleanup(self, project, created, run_id, keep):
        if keep:
            return
        connections.close_all()  # the connection may have died during a long run
        if created:
            # Set-based deletes first: the ORM cascade would load every event into memory.
            with transaction.atomic(), connection.cursor() as cursor:
                for table in USAGE_TABLES:
                    cursor.execute(f"DELETE FROM {table} WHERE project_id = %s", [project.pk])  # noqa: S608
            project.delete()
            return
        # A project that existed before: remove only this run's events and rebuild the hours they touched.
        from costwatch.metrics.services import rollups_refresh_dirty

        now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        hours = [now - dt.timedelta(hours=h) for h in range(-1, soak.SPREAD_SECONDS // 3600 + 2)]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM ingest_event WHERE project_id = %s AND (event_id LIKE %s OR event_id LIKE %s)",
                           [project.pk, f"{run_id}-%", f"probe-{run_id}-%"])
            DirtyHour.objects.bulk_create([DirtyHour(project=project, hour=hour) for hour in hours])
        rollups_refresh_dirty(project=project)

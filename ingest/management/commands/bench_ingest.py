"""`manage.py bench_ingest`: events/s through the HTTP API beside raw COPY of the same rows (README.md#benchmarks).

1. Starts gunicorn on a free local port (or targets `--url` with `--key`), and sends
   `--events` events in batches of `--batch` from `--clients` processes (each its own
   HTTP session), timing the whole run.
2. Reads the stored rows back (COPY TO) and COPYs them, in the same batches from the same
   number of processes, into a scratch table created `LIKE ingest_event INCLUDING ALL`
   (same columns, same indexes incl. the BRIN and the unique key) on the same database.
3. Repeats both runs `--rounds` times (the events are deleted between rounds, so each starts
   from the same tables; this machine's speed drifts by up to 2x within a minute), prints
   every round's rates and ratio, then for the round with the median ratio: both rates,
   their ratio (target >= 0.5) and where the time goes: the CPU per batch
   of the web workers, PostgreSQL and the clients in each run (read from /proc through
   psutil; a remote part is left out), and an in-process profile of a batch's stages (parse /
   validate / price / write). Then drops the scratch table and (unless --keep) deletes the
   benchmark's events.

Request bodies and COPY chunks are built before the clock starts and reach the forked client
processes through memory, so neither run is charged for preparing its input.
"""

import gc
import http.client
import multiprocessing
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections

from costwatch.devtools import database_url
from costwatch.devtools.bench import (
    CpuMeter,
    bench_project_ensure,
    gunicorn_start,
    load_arguments,
    options_positive,
)
from costwatch.projects.services import api_key_issue
from ingest.event_fields import MAX_BATCH_EVENTS

ROOT = Path(settings.BASE_DIR)
SCRATCH_TABLE = "bench_ingest_copy"
FEATURES = [f"feature-{i:02d}" for i in range(24)]
MODELS = [("gemini-2.5-flash-lite", "google"), ("gemini-2.5-pro", "google"), ("gpt-5-mini", "openai"),
          ("gpt-5", "openai"), ("claude-haiku-4-5-20251001", "anthropic"),
          ("claude-sonnet-4-5-20250929", "anthropic"), ("in-house-7b", "")]


def make_batch(run_id: str, batch_index: int, size: int, now: datetime) -> bytes:
    """One request body; deterministic per (run, batch) so client processes build their own."""
    rng = random.Random(f"{run_id}:{batch_index}")
    events = []
    for i in range(size):
        model, provider = rng.choice(MODELS)
        input_tokens = rng.randint(200, 20_000)
        output_tokens = rng.randint(10, 2_000)
        event = {
            "event_id": f"{run_id}-{batch_index}-{i}",
            "timestamp": (now - timedelta(seconds=rng.randint(0, 86_000))).isoformat(),
            "feature": rng.choice(FEATURES), "model": model, "input_tokens": input_tokens,
            "cached_input_tokens": rng.randint(0, input_tokens // 2), "output_tokens": output_tokens,
            "reasoning_tokens": rng.randint(0, output_tokens // 3),
            "max_output_tokens": rng.choice([None, 1024, 4096]), "finish_reason": rng.choice(["stop", "length"]),
            "latency_ms": rng.randint(100, 9_000), "ttft_ms": rng.randint(50, 900),
            "role": rng.choice(["primary", "primary", "primary", "triage", "escalation"]),
            "request_id": f"r-{batch_index}-{i // 2}", "attributes": {"customer": f"c{rng.randint(1, 50)}"},
        }
        if provider:
            event["provider"] = provider
        events.append(event)
    return msgspec.json.encode({"events": events})


def _conninfo() -> str:
    return database_url().replace("postgres://", "postgresql://", 1)


# What the client processes send, set before they are forked so that building request bodies
# (~25 ms of CPU per 1000 events) and COPY chunks happens before the clock starts and nothing
# is pickled to them inside the timed run.
_WORK: dict = {}


def _build_batches(args):
    run_id, indexes, size, now_iso = args
    now = datetime.fromisoformat(now_iso)
    return [make_batch(run_id, index, size, now) for index in indexes]


def _send_batches(args):
    """Client process: POST its share of `_WORK["bodies"]` over one keep-alive connection
    (http.client: on a 2-core machine every client millisecond is taken from the server);
    returns (accepted, duplicates, failures, seconds inside requests)."""
    url, key, share = args
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    accepted = duplicates = failures = 0
    busy = 0.0
    for body in _WORK["bodies"][share]:
        started = time.perf_counter()
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        busy += time.perf_counter() - started
        if response.status == 200:
            result = msgspec.json.decode(content)
            accepted += result["accepted"]
            duplicates += result["duplicates"]
        else:
            failures += 1
    connection.close()
    return accepted, duplicates, failures, busy


def _copy_batches(args):
    """COPY process: each chunk of rows is one COPY statement and one commit, like one API batch."""
    import psycopg

    conninfo, columns, share = args
    with psycopg.connect(conninfo, autocommit=False) as conn:
        for chunk in _WORK["chunks"][share]:
            with conn.cursor() as cursor, cursor.copy(f"COPY {SCRATCH_TABLE} ({columns}) FROM STDIN") as copy:
                copy.write(chunk)
            conn.commit()
    return len(_WORK["chunks"][share])


class Command(BaseCommand):
    help = ("Ingest benchmark: events/s through POST /api/v1/events (gunicorn, batches, several client "
            "processes) beside raw COPY of the same rows into a table with the same columns and indexes; "
            "prints both, their ratio (target >= 0.5) and where a batch's time goes.")

    def add_arguments(self, parser):
        load_arguments(parser, project="bench-ingest", workers=3, clients=4, batch=1000,
                       helps={"workers": "gunicorn workers when starting one [3]"})
        parser.add_argument("--events", type=int, default=200_000, help="Events to send [200000]")
        parser.add_argument("--threads", type=int, default=1, help="Threads per gunicorn worker (gthread if > 1) [1]")
        parser.add_argument("--url", help="Target a running server (e.g. http://127.0.0.1:8000); needs --key")
        parser.add_argument("--key", help="An ingest key of --project for --url")
        parser.add_argument("--profile-batches", type=int, default=10, help="Batches profiled in-process [10]")
        parser.add_argument("--rounds", type=int, default=3,
                            help="API run + COPY run pairs; the report is the round with the median ratio [3]")

    def handle(self, *args, **opts):
        self._check_options(opts)
        project, _ = bench_project_ensure(opts["project"])
        run_id = uuid.uuid4().hex[:8]
        batches = -(-opts["events"] // opts["batch"])
        server = None
        try:
            if opts["url"]:
                base_url, key = opts["url"].rstrip("/"), opts["key"]
            else:
                key = api_key_issue(project=project, scopes=["ingest"], name="bench_ingest",
                                    actor_label="bench_ingest").plaintext
                server, base_url = gunicorn_start(workers=opts["workers"], threads=opts["threads"])
            rounds = []
            for number in range(opts["rounds"]):
                if number and not opts["keep"]:
                    self._cleanup(project, keep=False)  # every round starts from the same tables
                round_id = f"{run_id}r{number}"
                api = self._run_api(base_url, key, round_id, batches, opts, CpuMeter(server and server.pid))
                stored = self._count_stored(project, round_id)
                copy = self._run_copy(project, round_id, opts, CpuMeter(None))
                rounds.append((api, stored, copy))
            profile = self._profile(project, run_id, opts)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=20)
            self._cleanup(project, opts["keep"])
        self._report(opts, rounds, profile)

    def _check_options(self, opts):
        options_positive(opts, ("events", "batch", "clients", "workers", "rounds"))
        if opts["batch"] > MAX_BATCH_EVENTS:
            raise CommandError(f"--batch must be <= {MAX_BATCH_EVENTS} (the API's limit per request)")
        if opts["url"] and not opts["key"]:
            raise CommandError("--url needs --key (an ingest key of --project on that server)")

    def _run_api(self, base_url, key, run_id, batches, opts, meter):
        now_iso = datetime.now(UTC).isoformat()
        clients = min(opts["clients"], batches)
        shares = [list(range(c, batches, clients)) for c in range(clients)]
        context = multiprocessing.get_context("fork")
        connections.close_all()  # never hand a live connection to forked processes
        with context.Pool(clients) as pool:
            built = pool.map(_build_batches, [(run_id, share, opts["batch"], now_iso) for share in shares])
            # A warm-up batch of one event per client (imports, first connection), outside the clock.
            warm = pool.map(_build_batches, [(f"{run_id}w", [i], 1, now_iso) for i in range(clients)])
        _WORK["bodies"] = built + warm
        url = f"{base_url}/api/v1/events"
        try:
            meter.start()  # the warm-up batches are counted too: a few events, nothing measurable
            with context.Pool(clients) as pool:
                pool.map(_send_batches, [(url, key, clients + c) for c in range(clients)])
                started = time.perf_counter()
                results = pool.map(_send_batches, [(url, key, c) for c in range(clients)])
                elapsed = time.perf_counter() - started
            meter.stop()  # after the pool's processes were reaped, so their CPU is counted
        finally:
            _WORK.clear()
        accepted = sum(r[0] for r in results)
        return {"seconds": elapsed, "accepted": accepted, "duplicates": sum(r[1] for r in results),
                "failures": sum(r[2] for r in results), "sent": batches * opts["batch"],
                "request_seconds": sum(r[3] for r in results), "requests": batches, "cpu": meter.used}

    def _count_stored(self, project, run_id):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM ingest_event WHERE project_id = %s AND event_id LIKE %s",
                           [project.pk, f"{run_id}-%"])
            return cursor.fetchone()[0]

    def _run_copy(self, project, run_id, opts, meter):
        from ingest.copytext import EVENT_COLUMNS

        columns = ", ".join(EVENT_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
            cursor.execute(f"CREATE TABLE {SCRATCH_TABLE} (LIKE ingest_event INCLUDING ALL)")
            data = bytearray()
            with cursor.cursor.copy(
                f"COPY (SELECT {columns} FROM ingest_event WHERE project_id = {int(project.pk)} "
                f"AND event_id LIKE '{run_id}-%%' ORDER BY id) TO STDOUT"
            ) as copy:
                for chunk in copy:
                    data += chunk
        lines = bytes(data).splitlines(keepends=True)
        chunks = [b"".join(lines[i:i + opts["batch"]]) for i in range(0, len(lines), opts["batch"])]
        clients = max(1, min(opts["clients"], len(chunks)))
        _WORK["chunks"] = [chunks[c::clients] for c in range(clients)]
        connections.close_all()
        context = multiprocessing.get_context("fork")
        try:
            meter.start()
            with context.Pool(clients) as pool:
                started = time.perf_counter()
                pool.map(_copy_batches, [(_conninfo(), columns, c) for c in range(clients)])
                elapsed = time.perf_counter() - started
            meter.stop()
        finally:
            _WORK.clear()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {SCRATCH_TABLE}")
            copied = cursor.fetchone()[0]
        return {"seconds": elapsed, "rows": copied, "batches": len(chunks), "cpu": meter.used}

    def _profile(self, project, run_id, opts):
        """Where a batch's time goes, measured in this process on fresh batches, on the API's path."""
        from ingest.decoding import batch_decode_strict
        from ingest.services import event_batch_ingest_json

        now = datetime.now(UTC)
        totals = {"parse": 0.0, "validate": 0.0, "price": 0.0, "write": 0.0}
        count = max(1, opts["profile_batches"])
        bodies = [make_batch(f"{run_id}p", index, opts["batch"], now) for index in range(count + 1)]
        event_batch_ingest_json(project=project, events=batch_decode_strict(bodies[0]), body=bodies[0])  # warm-up
        gc.collect()
        gc.freeze()  # as costwatch/wsgi.py does in the web workers
        for body in bodies[1:]:
            started = time.perf_counter()
            events = batch_decode_strict(body)
            totals["parse"] += time.perf_counter() - started
            result = event_batch_ingest_json(project=project, events=events, body=body)
            for stage, seconds in result.timings.items():
                totals[stage] += seconds
        gc.unfreeze()
        return {stage: seconds / count for stage, seconds in totals.items()}

    def _cleanup(self, project, keep):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
            if not keep:
                cursor.execute("DELETE FROM ingest_event WHERE project_id = %s", [project.pk])
                cursor.execute("DELETE FROM ingest_dirtyhour WHERE project_id = %s", [project.pk])
                if not connection.in_atomic_block:  # so the next run does not wade through dead index entries
                    cursor.execute("VACUUM (ANALYZE) ingest_event")

    def _report(self, opts, rounds, profile):
        out = self.stdout.write
        ratios = []
        for number, (api, _stored, copy) in enumerate(rounds, 1):
            api_rate, copy_rate = _rate(api["accepted"], api["seconds"]), _rate(copy["rows"], copy["seconds"])
            ratios.append(api_rate / copy_rate if copy_rate else 0.0)
            out(f"round {number}: API {api_rate:,.0f} events/s, raw COPY {copy_rate:,.0f} events/s, "
                f"ratio {ratios[-1]:.2f}")
        median = sorted(range(len(rounds)), key=ratios.__getitem__)[(len(rounds) - 1) // 2]
        api, stored, copy = rounds[median]
        api_rate, copy_rate, ratio = _rate(api["accepted"], api["seconds"]), _rate(copy["rows"], copy["seconds"]), ratios[median]
        out(f"median round ({median + 1} of {len(rounds)}):")
        out(f"events sent: {api['sent']} in {api['requests']} requests of {opts['batch']} from "
            f"{opts['clients']} client processes")
        out(f"stored: {stored} (accepted {api['accepted']}, duplicates {api['duplicates']}, "
            f"failed requests {api['failures']})")
        out(f"API ingest: {api_rate:,.0f} events/s ({api['seconds']:.2f} s)")
        out(f"raw COPY:   {copy_rate:,.0f} events/s ({copy['rows']} rows in {copy['seconds']:.2f} s, same columns "
            f"and indexes, {opts['clients']} connections, one COPY + commit per {opts['batch']} rows)")
        out(f"ratio API/COPY: {ratio:.3f} (target >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})")
        in_process = sum(profile.values())
        per_request = api["request_seconds"] / api["requests"] if api["requests"] else 0.0
        out(f"profile per batch of {opts['batch']} (in-process, ms): "
            + ", ".join(f"{stage} {seconds * 1000:.1f}" for stage, seconds in profile.items())
            + f"; total {in_process * 1000:.1f}")
        out("profile shares: " + ", ".join(f"{stage} {seconds / in_process:.0%}" for stage, seconds in profile.items())
            if in_process else "profile shares: n/a")
        out(f"mean request latency seen by clients: {per_request * 1000:.1f} ms (HTTP, auth, body read, "
            f"queueing: {max(0.0, per_request - in_process) * 1000:.1f} ms beyond the in-process work)")
        out(f"CPU per batch of {opts['batch']} (ms), API: {_cpu_text(api['cpu'], api['requests'])}; "
            f"raw COPY: {_cpu_text(copy['cpu'], copy['batches'])}")
        if any(api["failures"] or stored != api["accepted"] for api, stored, _copy in rounds):
            raise CommandError("some requests failed or stored rows do not match the accepted count")


def _cpu_text(used: dict, batches: int) -> str:
    names = {"web": "web workers", "database": "PostgreSQL", "clients": "clients"}
    parts = [f"{names[group]} {seconds / batches * 1000:.1f}" for group, seconds in used.items()
             if seconds is not None]
    return ", ".join(parts) or "n/a"


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else 0.0

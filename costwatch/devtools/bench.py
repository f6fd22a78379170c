"""Helpers the benchmark and soak commands share: their common options, a gunicorn to measure, CPU and
RSS meters, percentiles, a bench project (found, created or fresh), COPY of synthetic rollup rows, the
worst-time verdict line.

Development tools only: the product's web and worker processes never import this package.
"""

import math
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

from costwatch.cli import project_argument, project_find
from costwatch.devtools import database_url, free_port
from costwatch.projects.models import Project
from costwatch.projects.services import project_create
from ingest.models import Feature


def load_arguments(parser, *, project: str, workers: int, clients: int | None = None, batch: int | None = None,
                   helps: dict | None = None) -> None:
    """The options the load runs share: --project (created if missing), --workers (of the gunicorn
    they start) and, for those that send events, --clients, --batch and --keep. `helps` replaces
    an option's help where a command means more by it ({"keep": "..."})."""
    helps = helps or {}
    if "project" in helps:
        parser.add_argument("--project", default=project, help=helps["project"])
    else:
        project_argument(parser, default=project, note="; created if missing")
    parser.add_argument("--workers", type=int, default=workers,
                        help=helps.get("workers", f"gunicorn workers [{workers}]"))
    if clients is not None:
        parser.add_argument("--clients", type=int, default=clients, help=f"Client processes [{clients}]")
    if batch is not None:
        parser.add_argument("--batch", type=int, default=batch,
                            help=helps.get("batch", f"Events per request [{batch}]"))
        parser.add_argument("--keep", action="store_true",
                            help=helps.get("keep", "Keep the run's events afterwards"))


def options_positive(opts: dict, names=None) -> None:
    """A CommandError naming the first option (of `names`, else of all `opts`) whose value is not > 0."""
    for name in names or opts:
        if opts[name] <= 0:
            raise CommandError(f"--{name.replace('_', '-')} must be > 0")


def bench_project_ensure(value: str, *, name: str = "", owner=None,
                         by_name: bool = True) -> tuple[Project, bool]:
    """The project whose slug (or, `by_name`, whose name) is `value`, else a new one with that slug:
    (project, created)."""
    project = project_find(value) if by_name else Project.objects.filter(slug=value).first()
    if project is not None:
        return project, False
    return project_create(name=name or value, slug=value, owner=owner), True


def gunicorn_start(*, workers: int, threads: int = 1) -> tuple[subprocess.Popen, str]:
    """gunicorn serving costwatch on a free local port against this process's database; (process, base URL)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(), "INGEST_RATE_LIMIT": "0",
           "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "costwatch.settings")}
    env.setdefault("DEBUG", "true" if settings.DEBUG else "false")
    args = [sys.executable, "-m", "gunicorn", "costwatch.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
            "--worker-class", "gthread" if threads > 1 else "sync", "--threads", str(threads),
            "--keep-alive", "30", "--log-level", "warning", "--timeout", "120"]
    server = subprocess.Popen(args, cwd=Path(settings.BASE_DIR), env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CommandError(f"gunicorn exited with {server.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise CommandError("gunicorn did not start listening within 60 s")


def percentile(values, q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of `values`; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def rss_mb() -> float:
    """Current resident set size of this process (what a worker running the same work would hold)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CpuMeter:
    """CPU seconds of the web server's processes, the local PostgreSQL's (backends that exited
    included) and this command's client processes between `start` and `stop`. A group that
    cannot be read here (a server given by --url, a remote database) reads as None."""

    GROUPS = ("web", "database", "clients")

    def __init__(self, server_pid: int | None):
        import psutil

        self._psutil = psutil
        self._roots = {"web": self._process(server_pid), "database": self._postmaster()}
        self._started: dict = {}
        self.used: dict = {}

    def _process(self, pid):
        try:
            return self._psutil.Process(pid) if pid else None
        except self._psutil.Error:
            return None

    def _postmaster(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = self._process(cursor.fetchone()[0])
        try:
            return backend.parent() if backend is not None else None
        except self._psutil.Error:
            return None

    def _tree_seconds(self, root) -> float | None:
        if root is None:
            return None
        try:
            times = root.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in root.children(recursive=True):
                try:
                    times = child.cpu_times()
                    total += times.user + times.system
                except self._psutil.Error:  # exited meanwhile: counted in its parent's children times
                    pass
            return total
        except self._psutil.Error:
            return None

    def _read(self) -> dict:
        own = os.times()
        values = {group: self._tree_seconds(root) for group, root in self._roots.items()}
        values["clients"] = own.children_user + own.children_system
        return values

    def start(self):
        self._started = self._read()

    def stop(self):
        ended = self._read()
        self.used = {group: None if ended[group] is None or self._started[group] is None
                     else ended[group] - self._started[group] for group in self.GROUPS}


def bench_project_recreate(*, slug: str, name: str, features: int) -> tuple[Project, list[int]]:
    """A fresh bench project (an earlier run's is deleted with its data) with `features` features
    named feature-0000, feature-0001, ...: (project, their ids in name order)."""
    Project.objects.filter(slug=slug).delete()
    project = Project.objects.create(name=name, slug=slug)
    Feature.objects.bulk_create([Feature(project=project, name=f"feature-{i:04d}") for i in range(features)])
    return project, list(Feature.objects.filter(project=project).order_by("name").values_list("id", flat=True))


def rows_copy(model, rows) -> None:
    """COPY dicts of column values into `model`'s table; a column a row leaves out is 0 (an empty
    array for a histogram)."""
    columns = [f.column for f in model._meta.concrete_fields if f.column != "id"]
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for values in rows:
            copy.write_row([values.get(c, 0 if not c.endswith("_hist") else []) for c in columns])


def worst_time_line(label: str, timings: list[float], target_s: float) -> str:
    """'<label>: worst 1.23 s (target < 5 s) OK' (SLOW when the worst run missed the target)."""
    worst = max(timings)
    return f"{label}: worst {worst:.2f} s (target < {target_s:g} s) {'OK' if worst < target_s else 'SLOW'}"

"""Re-pricing past events after a price change (docs/ingest.md#re-pricing), in batches, marking their hours dirty.

Only events whose tier, cost, cost source or price row actually change are written; each
batch is its own transaction and writes the DirtyHour marks of the hours it changed, so
rollups rebuild exactly those hours. Batches walk the (project_id, ts) index by keyset.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from costwatch.metrics.definitions import hour_floor
from costwatch.projects.models import Project

from .models import PriceRecompute, SeenModel
from .pricing import PriceBook, catalogue_version, model_matches

logger = logging.getLogger(__name__)
BATCH_SIZE = 5000
RECOMPUTE_TASK = "ingest.tasks.recompute_costs"  # the Celery task that runs `recompute_run`
_COLUMNS = ["id", "ts", "model", "provider", "service_tier", "input_tokens", "cached_input_tokens",
            "cache_write_input_tokens", "output_tokens", "reasoning_tokens", "client_tier", "client_cost_usd",
            "tier", "cost_usd", "cost_source", "price_id"]
_PRICED = ("tier", "cost_usd", "cost_source", "price_id")


@dataclass
class RecomputeResult:
    events_scanned: int = 0
    events_changed: int = 0
    events_priced: int = 0  # stored without a cost before, with one after
    cost_before: Decimal = Decimal(0)
    cost_after: Decimal = Decimal(0)
    hours: set = field(default_factory=set)
    truncated: bool = False  # stopped at `limit` events (a preview); more match

    @property
    def cost_delta(self) -> Decimal:
        return self.cost_after - self.cost_before


class LeaseLost(Exception):
    """Another worker took over a recompute whose lease ran out: this one stops writing."""


class RecomputeLease:
    """A worker's claim on a PriceRecompute: the lease end is the claim's token. Each batch
    renews it inside the batch's own transaction (and adds the batch's changed events to the
    row), so a batch is written only while its claim holds and is counted exactly once."""

    def __init__(self, recompute_id: int, until: dt.datetime):
        self.recompute_id, self.until = recompute_id, until

    def renew(self, *, changed: int) -> None:
        until = timezone.now() + recompute_lease()
        held = PriceRecompute.objects.filter(pk=self.recompute_id, state=PriceRecompute.RUNNING,
                                             lease_until=self.until).update(
            lease_until=until, events_changed=F("events_changed") + changed)
        if not held:
            raise LeaseLost(f"recompute {self.recompute_id}: lease lost")
        self.until = until

    def rows(self):
        """The recompute, while this claim still holds it."""
        return PriceRecompute.objects.filter(pk=self.recompute_id, state=PriceRecompute.RUNNING,
                                             lease_until=self.until)


def recompute_lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.RECOMPUTE_LEASE_SECONDS)


def costs_recompute(*, project=None, models=None, since=None, dry_run=False, batch_size=BATCH_SIZE,
                    progress=None, limit=None, lease: RecomputeLease | None = None) -> RecomputeResult:
    """Re-price events of `project` (None = every project) with model in `models` (None = all)
    and ts >= `since` (None = all time). `dry_run` computes the preview without writing;
    `limit` stops after that many events (the preview's bound inside a web request). With a
    `lease`, each batch is written only while the lease holds (else LeaseLost)."""
    result = RecomputeResult()
    projects = [project] if project is not None else Project.objects.order_by("id")
    for one in projects:
        _project_recompute(one, models, since, dry_run, batch_size, result, limit, lease)
        if progress:
            progress(one, result)
    return result


def _project_recompute(project, models, since, dry_run, batch_size, result, limit=None, lease=None):
    if models is not None and not models:
        return
    after, book, version = None, None, None
    while True:
        if limit is not None and result.events_scanned >= limit:
            result.truncated = bool(_batch_fetch(project.pk, models, since, after, 1))
            return
        size = batch_size if limit is None else min(batch_size, limit - result.events_scanned)
        rows = _batch_fetch(project.pk, models, since, after, size)
        if not rows:
            return
        # One book while the catalogue stays as it was (one small query per batch tells): a
        # price added during a long walk is used from the next batch on, never overwritten.
        current = catalogue_version(project)
        if current != version:
            book, version = PriceBook.load(project=project, models=models), current
        after = (rows[-1]["ts"], rows[-1]["id"])
        result.events_scanned += len(rows)
        changed = _batch_reprice(project, book, rows, result)
        if dry_run:
            continue
        if lease is not None:
            with transaction.atomic():  # the lease row stays locked until the batch commits
                lease.renew(changed=len(changed))
                if changed:
                    _batch_write(project.pk, changed)
        elif changed:
            with transaction.atomic():
                _batch_write(project.pk, changed)


def _events_where(project_id, models, since) -> tuple[list[str], list]:
    """The WHERE terms and parameters of a project's events of `models` (None = all) since `since`."""
    where, params = ["project_id = %s"], [project_id]
    if models is not None:
        where.append("model = ANY(%s)")
        params.append(list(models))
    if since is not None:
        where.append("ts >= %s")
        params.append(since)
    return where, params


def _batch_fetch(project_id, models, since, after, batch_size):
    where, params = _events_where(project_id, models, since)
    if after is not None:
        where.append("(ts, id) > (%s, %s)")
        params.extend(after)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(_COLUMNS)} FROM ingest_event WHERE {' AND '.join(where)} "
                       f"ORDER BY ts, id LIMIT %s", [*params, batch_size])
        return [dict(zip(_COLUMNS, values, strict=True)) for values in cursor.fetchall()]


def _batch_reprice(project, book, rows, result):
    changed = []
    for row in rows:
        before = tuple(row[name] for name in _PRICED)
        book.price_row(row)
        if tuple(row[name] for name in _PRICED) != before:
            changed.append(row)
            result.events_changed += 1
            result.cost_before += before[1] or 0
            result.events_priced += before[1] is None and row["cost_usd"] is not None
            result.cost_after += row["cost_usd"] or 0
            result.hours.add((project.pk, hour_floor(row["ts"])))
    return changed


def _batch_write(project_id, rows):
    with connection.cursor() as cursor:
        cursor.execute(
            """UPDATE ingest_event e SET tier = v.tier, cost_usd = v.cost_usd, cost_source = v.cost_source,
                      price_id = v.price_id
               FROM unnest(%s::bigint[], %s::text[], %s::numeric[], %s::text[], %s::bigint[])
                    AS v(id, tier, cost_usd, cost_source, price_id)
               WHERE e.id = v.id AND e.project_id = %s""",
            [[r["id"] for r in rows], [r["tier"] for r in rows], [r["cost_usd"] for r in rows],
             [r["cost_source"] for r in rows], [r["price_id"] for r in rows], project_id],
        )
        cursor.execute(
            """INSERT INTO ingest_dirtyhour (project_id, hour, created_at)
               SELECT DISTINCT %s, date_trunc('hour', ts, 'UTC'), now() FROM unnest(%s::timestamptz[]) AS t(ts)""",
            [project_id, [r["ts"] for r in rows]],
        )


def events_matching_count(*, project, models, since, cap: int) -> int:
    """How many events a price change touches, counting at most `cap` + 1 index entries
    (cap + 1 means "more than cap"): bounded work however large the events table is."""
    where, params = _events_where(project.pk, models, since)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM ingest_event WHERE {' AND '.join(where)} "
                       f"LIMIT %s) AS matching", [*params, cap + 1])
        return cursor.fetchone()[0]


def models_matching(*, project, pattern: str, is_glob: bool) -> list[str]:
    """Known model ids (seen in events; of one project, or of all for a global price) that a pattern matches."""
    seen = SeenModel.objects.all() if project is None else SeenModel.objects.filter(project=project)
    if not is_glob:
        return [pattern] if seen.filter(model=pattern).exists() else []
    return sorted({m for m in seen.values_list("model", flat=True) if model_matches(pattern, True, m)})


def _lease_over(now) -> Q:
    # No lease at all: RUNNING since before recomputes had leases, i.e. stuck for good until now.
    return Q(state=PriceRecompute.RUNNING) & (Q(lease_until__lt=now) | Q(lease_until__isnull=True))


def recompute_claim(*, recompute_id: int, now=None) -> RecomputeLease | None:
    """Claim a queued recompute, or one whose worker died (its lease ran out), by one
    conditional UPDATE: two workers never hold it at once."""
    now = now or timezone.now()
    until = now + recompute_lease()
    claimed = (PriceRecompute.objects.filter(pk=recompute_id)
               .filter(Q(state=PriceRecompute.QUEUED) | _lease_over(now))
               .update(state=PriceRecompute.RUNNING, lease_until=until, attempts=F("attempts") + 1))
    return RecomputeLease(recompute_id, until) if claimed else None


def recompute_run(*, recompute_id: int) -> PriceRecompute | None:
    """Run a recompute under a lease. A redelivered task finds it claimed (or done) and does
    nothing; a worker killed mid-walk leaves it RUNNING with a lease that runs out, and the
    next claim walks again: batches already written re-price to the same values, so they are
    neither written nor counted twice."""
    lease = recompute_claim(recompute_id=recompute_id)
    if lease is None:
        return None
    recompute = PriceRecompute.objects.select_related("project").get(pk=recompute_id)
    try:
        costs_recompute(project=recompute.project, models=recompute.models_matched or None, since=recompute.since,
                        batch_size=settings.RECOMPUTE_BATCH_SIZE, lease=lease)
    except LeaseLost:
        logger.warning("recompute %s: lease lost to another worker; stopping", recompute_id)
        return None
    except Exception as exc:
        lease.rows().update(state=PriceRecompute.FAILED, error=repr(exc)[:2000], finished_at=timezone.now())
        raise
    if not lease.rows().update(state=PriceRecompute.DONE, finished_at=timezone.now()):
        return None
    recompute.refresh_from_db()
    return recompute


def recomputes_stale(*, now=None) -> list[int]:
    """Recomputes no worker holds: RUNNING past their lease (the worker died), or QUEUED for
    longer than a lease (the task was lost, e.g. the broker was down when it was queued)."""
    now = now or timezone.now()
    stale = _lease_over(now) | Q(state=PriceRecompute.QUEUED, created_at__lt=now - recompute_lease())
    return list(PriceRecompute.objects.filter(stale).order_by("id").values_list("id", flat=True))

"""Writes of the ingest app: event batches (validate -> price -> COPY), features.

The write path per batch, in one transaction (a savepoint inside a caller's), three round trips:
1. one statement creates the features seen for the first time (`INSERT ... ON CONFLICT DO
   NOTHING`, names sorted so concurrent batches lock in the same order) and adds the DirtyHour
   marks of the batch's hours (with a lower bound of the batch's event ids); new model ids are recorded the same way when a process first
   sees them;
2. `COPY` the events (distinct ids, sorted) straight into `ingest_event`; 3. commit.
If the COPY hits the unique key (a retried batch, or a concurrent retry of the same one), the
attempt is rolled back and redone on the always-correct path: COPY into a per-connection
temporary staging table and one `INSERT ... ON CONFLICT (project_id, event_id) DO NOTHING
RETURNING id, ts` that marks the hours of the events it stored (with their lowest id). Either way the unique key is what
makes a repeated or concurrently retried batch store once.
"""

import itertools
import operator
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from .copytext import EVENT_COLUMNS, copy_text, rows_to_columns
from .decoding import columns_from_structs, event_validate_fast, utc_text
from .models import Event
from .pricing import MAX_CACHED_MODELS, event_columns_price, event_rows_price
from .unpriced import unpriced_warnings
from .validation import Context

EVENT_TABLE = Event._meta.db_table
STAGING_TABLE = f"ingest_event_staging_{zlib.crc32(','.join(EVENT_COLUMNS).encode()):08x}"


@dataclass
class StoreResult:
    accepted: int = 0
    duplicates: int = 0


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # seconds per stage, for bench_ingest's profile

    def as_response(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected,
                "errors": self.errors, "warnings": warnings_capped(self.warnings)}


MAX_WARNINGS_PER_RESPONSE = 200


def warnings_capped(warnings: list) -> list:
    """In event order, at most MAX_WARNINGS_PER_RESPONSE warnings, then one saying how many more there were
    (each event holds at most validation.MAX_WARNINGS_PER_EVENT, then its own "how many more").
    unpriced_model warnings are added after validation's: sorting puts them with their event, before
    the event's "how many more"."""
    warnings = sorted(warnings, key=_warning_order)
    if len(warnings) <= MAX_WARNINGS_PER_RESPONSE:
        return warnings
    more = len(warnings) - MAX_WARNINGS_PER_RESPONSE
    return [*warnings[:MAX_WARNINGS_PER_RESPONSE],
            {"field": None, "code": "too_many_warnings", "message": f"{more} more warnings were left out"}]


def _warning_order(warning: dict) -> tuple[int, bool]:
    index = warning["index"] if warning.get("index") is not None else -1
    return index, warning["code"] == "too_many_warnings"


def event_batch_ingest(*, project, events: list, received_at=None, cap_known_default=True) -> BatchResult:
    """Validate, price and store raw event dicts; per-event errors name index, event_id and field."""
    received_at = received_at or timezone.now()
    ctx = Context(received_at=received_at, max_age_days=settings.INGEST_MAX_AGE_DAYS,
                  cap_known_default=cap_known_default)
    result = BatchResult()
    started = time.perf_counter()
    rows = []
    for index, raw in enumerate(events):
        row, errors, warnings = event_validate_fast(raw, index, ctx)
        result.warnings.extend(warnings)
        if errors:
            result.rejected += 1
            result.errors.extend(errors)
        else:
            row["received_at"] = received_at
            rows.append(row)
    return _price_and_store(project, rows, result, started, events)


def event_batch_ingest_json(*, project, events, body: bytes, received_at=None) -> BatchResult:
    """The API's fast path: `events` decoded straight from `body` by `batch_decode_strict`,
    turned into columns without a dict per event. Any event that needs a detailed error sends
    the whole body through `event_batch_ingest`."""
    received_at = received_at or timezone.now()
    ctx = Context(received_at=received_at, max_age_days=settings.INGEST_MAX_AGE_DAYS)
    started = time.perf_counter()
    # JSON writes a backslash, tab, newline or NUL inside a string only as an escape: without a
    # backslash in the body, no string needs COPY escaping and none holds a NUL (refused per field).
    escape = b"\\" in body
    unique = unique_by_event_id(events, _struct_event_id)
    # A repeated id inside the batch goes the dict path too, so that every copy is checked and a
    # broken repeat is reported, not just counted as a duplicate.
    repeats = len(unique) != len(events)
    decoded = None if repeats or (escape and b"\\u0000" in body) else columns_from_structs(unique, ctx)
    if decoded is None:
        return event_batch_ingest(project=project, events=msgspec.json.decode(body)["events"],
                                  received_at=received_at)
    columns, texts = decoded
    texts["received_at"] = [utc_text(received_at)] * len(unique)
    validated = time.perf_counter()
    book = event_columns_price(project=project, columns=columns)
    priced = time.perf_counter()
    accepted = event_columns_store(project=project, columns=columns, texts=texts, escape=escape)
    result = BatchResult(accepted=accepted, duplicates=len(events) - accepted)
    result.timings = _timings(started, validated, priced)
    costs = columns["cost_usd"]
    if None in costs:  # one C-level scan for a priced batch
        models, providers = columns["model"], columns["provider"]
        unpriced = [(unique[i].event_id, models[i], providers[i]) for i, cost in enumerate(costs) if cost is None]
        result.warnings = unpriced_warnings(book=book, unpriced=unpriced,
                                            request_ids=map(_struct_event_id, events))
    return result


def _price_and_store(project, rows, result, started, events) -> BatchResult:
    validated = time.perf_counter()
    book = event_rows_price(project=project, rows=rows)
    priced = time.perf_counter()
    stored = event_rows_store(project=project, rows=rows)
    result.accepted, result.duplicates = stored.accepted, stored.duplicates
    result.timings = _timings(started, validated, priced)
    unpriced = list({row["event_id"]: (row["event_id"], row["model"], row.get("provider", ""))
                     for row in rows if row["cost_usd"] is None}.values())  # a repeated id warns once
    if unpriced:
        request_ids = (raw.get("event_id") if type(raw) is dict else None for raw in events)
        result.warnings.extend(unpriced_warnings(book=book, unpriced=unpriced, request_ids=request_ids))
    return result


def _timings(started, validated, priced) -> dict:
    return {"validate": validated - started, "price": priced - validated, "write": time.perf_counter() - priced}


_struct_event_id = operator.attrgetter("event_id")
_row_event_id = operator.itemgetter("event_id")


def unique_by_event_id(items: list, event_id) -> list:
    """The items with distinct event ids, sorted by id (one lock order for concurrent retries);
    of a repeated id inside the batch, the first wins."""
    ids = list(map(event_id, items))
    first = dict(zip(reversed(ids), reversed(items), strict=True))  # earlier items overwrite later ones
    return [first[key] for key in sorted(first)]


def event_rows_store(*, project, rows: list[dict], mark_dirty=True) -> StoreResult:
    """Store validated, priced rows (Event column names, `feature` as its name; missing columns
    take ROW_DEFAULTS) in one statement path."""
    unique = unique_by_event_id(rows, _row_event_id)
    if not unique:
        return StoreResult(accepted=0, duplicates=len(rows))
    accepted = event_columns_store(project=project, columns=rows_to_columns(unique), mark_dirty=mark_dirty)
    return StoreResult(accepted=accepted, duplicates=len(rows) - accepted)


def event_columns_store(*, project, columns: dict[str, list], texts=None, mark_dirty=True, escape=True) -> int:
    """Store events given as columns (distinct event ids, sorted); returns how many were new.

    `texts` holds columns already in COPY text form (unescaped). `escape=False` only when no
    string can hold a backslash, tab or newline."""
    attempt = {"project_id": project.pk, "columns": columns, "texts": texts or {}, "escape": escape,
               "mark_dirty": mark_dirty}
    try:
        return _store_attempt(direct=True, **attempt)
    except (IntegrityError, psycopg.errors.UniqueViolation):  # a repeat of stored events (a retried batch)
        return _store_attempt(direct=False, **attempt)


def _store_attempt(*, direct, project_id, columns, texts, escape, mark_dirty) -> int:
    """One transaction (a savepoint inside a caller's), so a COPY refused by the unique key undoes
    the attempt's features and dirty marks with it. `direct`: no lookup of stored ids first (it
    cost as much as the COPY); else the staging path, where ON CONFLICT sorts out the repeats."""
    hours = sorted(_epoch_hours(columns["ts"])) if mark_dirty and direct else []
    with transaction.atomic(), connection.cursor() as cursor:
        feature_ids = _features_ensure_and_mark(cursor, project_id=project_id, names=set(columns["feature"]),
                                                hours=hours)
        seen_models_ensure(cursor, project_id=project_id, models=set(columns["model"]))
        # Built per attempt: a feature created by a rolled-back attempt gets a new id in the next.
        data = copy_text(columns, project_id=project_id, feature_ids=feature_ids, texts=texts, escape=escape)
        if direct:
            _copy(cursor, EVENT_TABLE, data)
            return len(columns["ts"])
        return _staging_store(cursor, data, project_id=project_id, mark_dirty=mark_dirty)


def _epoch_hours(timestamps) -> set[int]:
    """The distinct UTC hours (hours since the epoch) of aware datetimes, in C-level maps."""
    seconds = map(int, map(datetime.timestamp, timestamps))
    return set(map(operator.floordiv, seconds, itertools.repeat(3600)))


def _features_ensure_and_mark(cursor, *, project_id: int, names, hours: list[int]) -> dict[str, int]:
    """Feature name -> id, creating the features seen for the first time; in the same round trip,
    mark the batch's UTC hours (epoch hours) dirty for the rollups. Each mark carries a lower bound
    of the ids the COPY that follows will draw (a nextval taken first, in this same transaction),
    so the refresh finds the batch's events by id range and by the mark's xmin."""
    names = sorted(names)
    cursor.execute(
        """
        WITH wanted(name) AS (SELECT unnest(%(names)s::text[])),
        created AS (
            INSERT INTO ingest_feature (project_id, name, expected_pro_share, muted, first_seen_at)
            SELECT %(project_id)s, name, NULL, false, now() FROM wanted ORDER BY name
            ON CONFLICT (project_id, name) DO NOTHING RETURNING name, id),
        dirty AS (
            INSERT INTO ingest_dirtyhour (project_id, hour, created_at, first_event_id)
            SELECT %(project_id)s, to_timestamp(hour * 3600), now(),
                   (SELECT nextval(pg_get_serial_sequence('ingest_event', 'id')))
            FROM unnest(%(hours)s::bigint[]) AS h(hour))
        SELECT name, id FROM created
        UNION ALL SELECT f.name, f.id FROM ingest_feature f JOIN wanted USING (name) WHERE f.project_id = %(project_id)s
        """,
        {"names": names, "project_id": project_id, "hours": hours},
    )
    ids = dict(cursor.fetchall())
    missing = [name for name in names if name not in ids]
    if missing:  # created by a concurrent batch after this statement's snapshot: visible now
        cursor.execute("SELECT name, id FROM ingest_feature WHERE project_id = %s AND name = ANY(%s)",
                       [project_id, missing])
        ids.update(cursor.fetchall())
    return ids


_known_models: set[tuple[int, str]] = set()


def seen_models_ensure(cursor, *, project_id: int, models) -> None:
    new = sorted(model for model in models if (project_id, model) not in _known_models)
    if not new:
        return
    cursor.execute(
        """INSERT INTO ingest_seenmodel (project_id, model, first_seen_at)
           SELECT %s, model, now() FROM unnest(%s::text[]) AS m(model) ORDER BY model
           ON CONFLICT (project_id, model) DO NOTHING""",
        [project_id, new],
    )
    # Remembered only after commit, so a rolled-back batch does not hide a model.
    def remember():
        if len(_known_models) >= MAX_CACHED_MODELS:  # model ids are client text: bound the memory
            _known_models.clear()
        _known_models.update((project_id, model) for model in new)

    transaction.on_commit(remember)


def _staging_store(cursor, data: bytes, *, project_id: int, mark_dirty: bool) -> int:
    """COPY into a per-connection temporary table, then one INSERT ... ON CONFLICT DO NOTHING that
    marks dirty only the hours of the events it stored."""
    columns = ", ".join(EVENT_COLUMNS)
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ON COMMIT DELETE ROWS AS "
                   f"SELECT {columns} FROM ingest_event WITH NO DATA")
    _copy(cursor, STAGING_TABLE, data)
    dirty = ("""INSERT INTO ingest_dirtyhour (project_id, hour, created_at, first_event_id)
                SELECT %(project_id)s, date_trunc('hour', ts, 'UTC'), now(), min(id) FROM inserted GROUP BY 2"""
             if mark_dirty else "SELECT")
    cursor.execute(
        f"""
        WITH inserted AS (
            INSERT INTO ingest_event ({columns}) SELECT {columns} FROM {STAGING_TABLE} ORDER BY event_id
            ON CONFLICT (project_id, event_id) DO NOTHING RETURNING id, ts),
        dirty AS ({dirty})
        SELECT count(*) FROM inserted
        """,
        {"project_id": project_id},
    )
    accepted = cursor.fetchone()[0]
    cursor.execute(f"TRUNCATE {STAGING_TABLE}")  # ON COMMIT DELETE ROWS waits for the outermost commit
    return accepted


def _copy(cursor, table, data: bytes):
    with cursor.cursor.copy(f"COPY {table} ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
        copy.write(data)

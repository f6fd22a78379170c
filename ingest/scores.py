"""Late quality scores (`POST /api/v1/scores`, docs/savings.md#scores): attach a score to a stored event.

Each item is checked on its own, like an event: good items set the event's `quality` and
`quality_source` (the item's `source`, "" when absent; the last score of an event in the batch
wins, and a later batch overwrites an earlier one), bad items are
reported with `index`, `event_id`, `field`, `code` and `message`. An `event_id` not stored (yet) is
rejected with `not_found`, so a client retries it. The same transaction writes a score mark per
scored event (no rollup sums quality, so nothing is rebuilt): the next refresh re-pairs just
those events for the savings evidence. An event scored before the refresh has added its batch
gets a rebuild mark for its hour instead (see score_batch_apply).
"""

import math
from dataclasses import dataclass, field

from django.db import connection, transaction

from costwatch.errors import api_error
from costwatch.projects.models import Project

MAX_BATCH_SCORES = 1000
MAX_SOURCE_LENGTH = 50
MAX_EVENT_ID_LENGTH = 128
ITEM_FIELDS = ("event_id", "quality", "source")


@dataclass
class ScoresResult:
    accepted: int = 0
    rejected: int = 0
    errors: list = field(default_factory=list)

    def as_response(self) -> dict:
        return {"accepted": self.accepted, "rejected": self.rejected, "errors": self.errors}


def _item_error(index, item, field_name, code, message):
    event_id = item.get("event_id") if isinstance(item, dict) and isinstance(item.get("event_id"), str) else None
    return api_error(field_name, code, message, index=index, event_id=event_id)


def score_check(index: int, item) -> tuple[tuple[str, float, str] | None, dict | None]:
    """One item -> ((event_id, quality, source), None) or (None, its error)."""
    if type(item) is not dict:
        return None, _item_error(index, item, None, "type", "must be an object {\"event_id\", \"quality\"}")
    event_id = item.get("event_id")
    if event_id is None:
        return None, _item_error(index, item, "event_id", "required", "is required")
    if type(event_id) is not str:
        return None, _item_error(index, item, "event_id", "type", "must be a string")
    if not event_id:
        return None, _item_error(index, item, "event_id", "min_length", "must not be empty")
    if len(event_id) > MAX_EVENT_ID_LENGTH:
        return None, _item_error(index, item, "event_id", "max_length",
                                 f"must be at most {MAX_EVENT_ID_LENGTH} characters")
    quality = item.get("quality")
    if quality is None:
        return None, _item_error(index, item, "quality", "required", "is required")
    if type(quality) not in (int, float) or math.isnan(quality):
        return None, _item_error(index, item, "quality", "type", "must be a number")
    if not 0 <= quality <= 1:
        return None, _item_error(index, item, "quality", "min_value" if quality < 0 else "max_value",
                                 "must be between 0 and 1")
    source = item.get("source", "")
    if source is None:
        source = ""
    if type(source) is not str:
        return None, _item_error(index, item, "source", "type", "must be a string")
    if len(source) > MAX_SOURCE_LENGTH:
        return None, _item_error(index, item, "source", "max_length",
                                 f"must be at most {MAX_SOURCE_LENGTH} characters")
    return (event_id, float(quality), source), None


def score_batch_apply(*, project: Project, scores: list) -> ScoresResult:
    """Validate every item, set the quality of the stored events (the last item of an event wins)
    and write a score mark per event (the refresh re-pairs it), in one transaction.

    The refresh finds a new batch's events by their xmin (docs/rollups.md#keeping-them-fresh), which
    the UPDATE replaces. So an event whose batch the refresh has not claimed yet gets a rebuild
    mark for its hour instead: the rebuild counts it from raw events, where a delta would miss it."""
    result = ScoresResult()
    latest: dict[str, tuple[float, str]] = {}  # event_id -> (quality, source) of its last item
    indexes: dict[str, list[int]] = {}
    for index, item in enumerate(scores):
        checked, error = score_check(index, item)
        if error:
            result.errors.append(error)
            continue
        event_id, quality, source = checked
        latest[event_id] = (quality, source)
        indexes.setdefault(event_id, []).append(index)
    found = set()
    if latest:
        ids = list(latest)
        qualities = [latest[event_id][0] for event_id in ids]
        sources = [latest[event_id][1] for event_id in ids]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                WITH target AS (
                    SELECT e.id, e.ts, e.xmin::text AS written_by, s.quality, s.source
                    FROM ingest_event e
                    JOIN unnest(%(ids)s::text[], %(qualities)s::float8[], %(sources)s::text[])
                        AS s(event_id, quality, source) ON e.event_id = s.event_id
                    WHERE e.project_id = %(project_id)s
                    FOR UPDATE OF e),
                scored AS (
                    UPDATE ingest_event e SET quality = t.quality, quality_source = t.source
                    FROM target t WHERE e.id = t.id
                    RETURNING e.event_id),
                pending AS (
                    SELECT xmin::text AS written_by FROM ingest_dirtyhour
                    WHERE project_id = %(project_id)s AND first_event_id IS NOT NULL),
                marked AS (
                    INSERT INTO ingest_dirtyhour (project_id, hour, created_at, scored_event_id)
                    SELECT %(project_id)s, date_trunc('hour', t.ts, 'UTC'), now(),
                           CASE WHEN t.written_by IN (SELECT written_by FROM pending) THEN NULL ELSE t.id END
                    FROM target t)
                SELECT event_id FROM scored
                """,
                {"ids": ids, "qualities": qualities, "sources": sources, "project_id": project.pk},
            )
            found = {row[0] for row in cursor.fetchall()}
    for event_id, positions in indexes.items():
        if event_id in found:
            result.accepted += len(positions)
            continue
        for index in positions:
            result.errors.append(api_error("event_id", "not_found",
                                           "no stored event has this event_id (yet); retry later",
                                           index=index, event_id=event_id))
    result.errors.sort(key=lambda error: error["index"])
    result.rejected = len(result.errors)
    return result

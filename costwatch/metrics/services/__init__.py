"""Rollup refresh: dirty UTC hours in, HourlyRollup / FeatureHour / FeatureDay / ModelDay / RouteDay / DimensionDay out.

Ingest (and a cost recompute) writes a DirtyHour mark in the same transaction as the events.
The refresh claims marks with DELETE ... RETURNING inside the transaction that rebuilds
their hours, so:
- a mark committed after the claim's snapshot is not deleted and its hour is rebuilt by the
  next run, so an event committed during a refresh is never missed;
- a refresh that fails rolls back, and its marks come back.
A per-project advisory lock keeps two refreshes of one project from rebuilding the same hour
at once. Every rebuild is set-based SQL (INSERT ... SELECT), never Python per event.

One module per step: `sql` (the statements), `refresh` (claims, deltas, rebuilds and the
project's state) and `rebuild` (marking everything dirty, and a full rebuild).
"""

from .rebuild import project_mark_all_dirty, rollups_rebuild
from .refresh import (
    RefreshResult,
    dirty_project_ids,
    project_refresh,
    rollup_state_touch_clean,
    rollups_refresh_dirty,
)

__all__ = [
    "RefreshResult", "dirty_project_ids", "project_mark_all_dirty", "project_refresh", "rollup_state_touch_clean",
    "rollups_rebuild", "rollups_refresh_dirty",
]

"""Dagster concurrency pools, with limits the project sets explicitly at start-up.

Not through `concurrency.pools.default_limit`: on PostgreSQL that path races and fails runs with
UniqueViolation (dagster #33054, reproduced on 1.13.27).
"""

from __future__ import annotations

import dagster as dg

from enrichment_pipeline.defs.names import POOL_IMPORT, POOL_LOOKUPS, POOL_PROFILE

# At most this many steps hold the database at once, whatever the number of runs.
POOL_LIMITS: dict[str, int] = {POOL_IMPORT: 1, POOL_LOOKUPS: 4, POOL_PROFILE: 2}


def ensure_pool_limits(instance: dg.DagsterInstance, limits: dict[str, int] | None = None) -> dict[str, int]:
    """Set every pool's limit on the instance; returns what changed (pool -> new limit)."""
    storage = instance.event_log_storage
    changed: dict[str, int] = {}
    for pool, limit in (limits or POOL_LIMITS).items():
        info = storage.get_concurrency_info(pool)
        if info.slot_count != limit:
            storage.set_concurrency_slots(pool, limit)
            changed[pool] = limit
    return changed

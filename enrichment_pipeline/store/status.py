"""The numbers `enrichment-pipeline status` reports."""

from __future__ import annotations

from typing import Any

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.sources import OUTCOMES, SOURCES


def status_report(postgres: PostgresResource, holder: str = "status") -> dict[str, Any]:
    with postgres.connection(holder) as conn:
        live, deleted = conn.execute(
            "SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM companies"
        ).fetchone()
        rejected = conn.execute("SELECT count(*) FROM rejected_units").fetchone()[0]
        row = conn.execute("SELECT value FROM pipeline_settings WHERE key = 'batches'").fetchone()
        outcome_rows = conn.execute(
            """
            SELECT e.source, e.outcome, count(*)
            FROM enrichments e JOIN companies c USING (orgnr)
            WHERE c.deleted_at IS NULL
            GROUP BY e.source, e.outcome
            """
        ).fetchall()
    sources: dict[str, dict[str, int]] = {s: {o: 0 for o in OUTCOMES} for s in SOURCES}
    for source, outcome, count in outcome_rows:
        sources.setdefault(source, {o: 0 for o in OUTCOMES})[outcome] = int(count)
    for counts in sources.values():
        counts["pending"] = max(0, int(live) - sum(counts[o] for o in OUTCOMES))
    return {
        "companies": int(live),
        "deleted": int(deleted),
        "rejected": int(rejected),
        "batches": int(row[0]) if row else 0,
        "sources": sources,
    }

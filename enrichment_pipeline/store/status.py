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


_ERROR_SHARES = """
SELECT c.batch, count(*) FILTER (WHERE e.outcome = 'error'), count(*) FILTER (WHERE e.outcome <> 'skipped')
FROM companies c JOIN enrichments e ON e.orgnr = c.orgnr AND e.source = %(source)s
WHERE c.batch = ANY(%(batches)s) AND c.deleted_at IS NULL
GROUP BY c.batch
"""
_COVERAGE = """
SELECT s.source, count(e.orgnr), count(*) FILTER (WHERE e.outcome = 'ok'), count(*)
FROM companies c CROSS JOIN unnest(%(sources)s::text[]) AS s(source)
LEFT JOIN enrichments e ON e.orgnr = c.orgnr AND e.source = s.source
WHERE c.batch = ANY(%(batches)s) AND c.deleted_at IS NULL
GROUP BY s.source
"""


def error_shares(postgres: PostgresResource, source: str, batches: list[int], holder: object = None) -> dict[int, tuple[int, int]]:
    """Per batch: (companies whose last `source` lookup ended in error, companies looked up)."""
    with postgres.connection(holder) as conn:
        rows = conn.execute(_ERROR_SHARES, {"source": source, "batches": batches}).fetchall()
    return {int(batch): (int(errors), int(looked_up)) for batch, errors, looked_up in rows}


def coverage(postgres: PostgresResource, batches: list[int], holder: object = None) -> dict[str, dict[str, int]]:
    """Per source, over the live companies of `batches`: how many have an outcome, how many are ok."""
    with postgres.connection(holder) as conn:
        rows = conn.execute(_COVERAGE, {"sources": list(SOURCES), "batches": batches}).fetchall()
    return {source: {"with_outcome": int(n), "ok": int(ok), "companies": int(total)} for source, n, ok, total in rows}

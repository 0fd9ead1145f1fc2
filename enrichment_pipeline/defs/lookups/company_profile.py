"""`company_profile`: one row per company joining every source with its freshness.

It replaces the old "which job is next" column: what a company lacks, and how old each piece
is, can be read from here, while Dagster's lineage decides what runs next.
"""

from typing import Any

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.lookups.policies import lookup_asset
from enrichment_pipeline.defs.names import POOL_PROFILE
from enrichment_pipeline.lookups.step import batches_of
from enrichment_pipeline.sources import SOURCES

_UPSERT = """
INSERT INTO company_profiles AS p (orgnr, batch, profile, sources_ok, sources_pending, oldest_fetch_at, updated_at)
SELECT c.orgnr, c.batch,
       jsonb_build_object(
           'navn', c.navn, 'organisasjonsform', c.organisasjonsform,
           'sources', coalesce(jsonb_object_agg(e.source, jsonb_build_object(
               'outcome', e.outcome, 'fetched_at', e.fetched_at, 'data', e.data)) FILTER (WHERE e.source IS NOT NULL), '{}'::jsonb)),
       count(*) FILTER (WHERE e.outcome = 'ok'),
       %(sources)s - count(e.source),
       min(e.fetched_at), now()
FROM companies c LEFT JOIN enrichments e ON e.orgnr = c.orgnr AND e.source = ANY(%(names)s)
WHERE c.batch = ANY(%(batches)s) AND c.deleted_at IS NULL
GROUP BY c.orgnr, c.batch, c.navn, c.organisasjonsform
ON CONFLICT (orgnr) DO UPDATE SET
    batch = EXCLUDED.batch, profile = EXCLUDED.profile, sources_ok = EXCLUDED.sources_ok,
    sources_pending = EXCLUDED.sources_pending, oldest_fetch_at = EXCLUDED.oldest_fetch_at, updated_at = now()
"""
_DROP_DELETED = """
DELETE FROM company_profiles p USING companies c
WHERE p.orgnr = c.orgnr AND c.batch = ANY(%(batches)s) AND c.deleted_at IS NOT NULL
"""
_SUMMARY = """
SELECT count(*), coalesce(sum(sources_ok), 0), count(*) FILTER (WHERE sources_pending = 0), min(oldest_fetch_at)
FROM company_profiles WHERE batch = ANY(%(batches)s)
"""


def build_profiles(postgres: PostgresResource, batches: list[int], holder: object = None) -> dict[str, Any]:
    params = {"batches": batches, "sources": len(SOURCES), "names": list(SOURCES)}
    with postgres.transaction(holder) as conn:
        conn.execute(_DROP_DELETED, params)
        conn.execute(_UPSERT, params)
        companies, ok, complete, oldest = conn.execute(_SUMMARY, params).fetchone()
    return {"companies": companies, "sources_ok": int(ok), "complete_profiles": complete,
            "oldest_fetch_at": oldest.isoformat() if oldest else ""}


@lookup_asset("company_profile", "database", "Every source joined per company, with its freshness.", deps=list(SOURCES),
              pool=POOL_PROFILE, automation_condition=dg.AutomationCondition.eager())
def company_profile(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    before = postgres.begin_window()
    summary = build_profiles(postgres, batches_of(context), holder=context)
    return dg.MaterializeResult(metadata={**summary, **postgres.stats().minus(before).as_metadata()})

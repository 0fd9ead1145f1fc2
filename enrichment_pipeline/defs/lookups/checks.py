"""Asset checks on the lookups, visible per batch in the UI: error share per batch, and coverage."""

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.companies.partitions import COMPANY_BATCHES
from enrichment_pipeline.defs.names import POOL_LOOKUPS, POOL_PROFILE
from enrichment_pipeline.importer.validate import partition_key
from enrichment_pipeline.lookups.step import batches_of
from enrichment_pipeline.sources import SOURCES, error_threshold
from enrichment_pipeline.store.status import coverage, error_shares


def error_share_check(source: str) -> dg.AssetChecksDefinition:
    """The share that fails a lookup step, per batch: one batch above it needs a look even when the
    step's average was below."""
    share_max = error_threshold(source)

    @dg.asset_check(asset=source, name="error_share_per_batch", partitions_def=COMPANY_BATCHES, pool=POOL_LOOKUPS,
                    description=f"No batch has more than {share_max:.0%} of its {source} lookups ending in error.")
    def _check(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> dg.AssetCheckResult:
        batches = batches_of(context)
        shares = error_shares(postgres, source, batches, f"check:{source}")
        over = {b: e / n for b, (e, n) in shares.items() if n and e / n > share_max}
        worst = max(shares.items(), key=lambda item: item[1][0] / item[1][1] if item[1][1] else 0.0, default=None)
        return dg.AssetCheckResult(
            passed=not over,
            metadata={
                "batches": len(batches),
                "batches_over_threshold": len(over),
                "worst_batch": partition_key(worst[0]) if worst else "",
                "worst_error_share": round(worst[1][0] / worst[1][1], 4) if worst and worst[1][1] else 0.0,
                "errors": sum(e for e, _ in shares.values()),
                "looked_up": sum(n for _, n in shares.values()),
            },
        )

    return _check


@dg.asset_check(asset="company_profile", name="every_source_covers_every_company", partitions_def=COMPANY_BATCHES,
                pool=POOL_PROFILE, description="Every live company of the batches has an outcome from every source.")
def every_source_covers_every_company(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> dg.AssetCheckResult:
    shares = coverage(postgres, batches_of(context), "check:company_profile")
    metadata: dict[str, float | int] = {}
    for source, counts in sorted(shares.items()):
        total = counts["companies"] or 1
        metadata[f"{source}_with_outcome_share"] = round(counts["with_outcome"] / total, 4)
        metadata[f"{source}_ok_share"] = round(counts["ok"] / total, 4)
    pending = sum(c["companies"] - c["with_outcome"] for c in shares.values())
    metadata["companies_pending"] = pending
    return dg.AssetCheckResult(passed=pending == 0, severity=dg.AssetCheckSeverity.WARN, metadata=metadata)


@dg.definitions
def lookup_checks() -> dg.Definitions:
    return dg.Definitions(asset_checks=[*(error_share_check(source) for source in SOURCES), every_source_covers_every_company])

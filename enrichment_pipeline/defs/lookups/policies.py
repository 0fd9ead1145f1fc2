"""What every lookup asset shares in Dagster: partitions, pool, backfill, retry and automation."""

import dagster as dg

from enrichment_pipeline.defs.companies.partitions import COMPANY_BATCHES
from enrichment_pipeline.defs.names import GROUP_LOOKUPS, POOL_LOOKUPS

# A backfill puts many batches in one run (one process start of ~5 s here), so the whole register
# (1,200 batches) is tens of runs, not thousands.
LOOKUP_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=50)

# A database restart or a killed backend fails the step retryably; the backfill then completes.
LOOKUP_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def lookup_asset(source: str, register: str, description: str, *, deps: list[str] | None = None,
                 pool: str = POOL_LOOKUPS):  # noqa: ANN201
    """`@dg.asset` with the settings every lookup shares."""
    from enrichment_pipeline.defs.names import REGISTER_TAG

    return dg.asset(
        key=source,
        partitions_def=COMPANY_BATCHES,
        deps=deps or ["companies"],
        group_name=GROUP_LOOKUPS,
        kinds={"postgres", "python"},
        pool=pool,
        backfill_policy=LOOKUP_BACKFILL,
        retry_policy=LOOKUP_RETRY,
        op_tags={REGISTER_TAG: register},
        description=description,
    )

"""What every lookup asset shares in Dagster: partitions, pool, backfill, retry and automation."""

import dagster as dg

from enrichment_pipeline.defs.companies.partitions import COMPANY_BATCHES
from enrichment_pipeline.defs.names import COMPANY_CHANGES, GROUP_LOOKUPS, POOL_LOOKUPS, REGISTER_TAG
from enrichment_pipeline.sources import CRON_TIMEZONE, FRESHNESS

# A backfill puts many batches in one run (one process start of ~5 s here), so the whole register
# (1,200 batches) is tens of runs, not thousands.
LOOKUP_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=50)

# A database restart or a killed backend fails the step retryably; the backfill then completes.
LOOKUP_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def lookup_automation(source: str) -> dg.AutomationCondition:
    """When a batch of companies changes, look it up again; and refresh every batch on the source's cron.

    `eager()` fires for exactly the batches whose `company_changes` partition was materialized
    since the last evaluation (the import and the change feed report them), and never while the
    batch is already running, so no run is requested twice. The cron refresh asks every batch once
    per tick; the step itself only looks up companies whose answer is older than the source's
    `max_age_days`, so a batch refreshed by a change in between costs almost nothing.
    """
    freshness = FRESHNESS[source]
    refresh = (
        dg.AutomationCondition.cron_tick_passed(freshness.cron, CRON_TIMEZONE).since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"{freshness.label} refresh ({freshness.cron} {CRON_TIMEZONE})")
    return (dg.AutomationCondition.eager() | refresh).with_label(f"batch changed, or {freshness.label} refresh")


def lookup_asset(source: str, register: str, description: str, *, deps: list[str] | None = None,
                 pool: str = POOL_LOOKUPS, automation_condition: dg.AutomationCondition | None = None):  # noqa: ANN201
    """`@dg.asset` with the settings every lookup shares."""
    return dg.asset(
        key=source,
        partitions_def=COMPANY_BATCHES,
        deps=deps or [COMPANY_CHANGES],
        group_name=GROUP_LOOKUPS,
        kinds={"postgres", "python"},
        pool=pool,
        backfill_policy=LOOKUP_BACKFILL,
        retry_policy=LOOKUP_RETRY,
        automation_condition=automation_condition or lookup_automation(source),
        op_tags={REGISTER_TAG: register},
        description=description,
    )

"""Declarative automation, on by default (Dagster ships its automation sensor stopped).

The conditions live on the assets (defs/lookups/policies.py): a lookup re-runs for exactly the
batches whose `company_changes` partition was reported, and refreshes on its source's cron.
Requests of many partitions become backfills that follow each asset's BackfillPolicy, so they
start tens of runs, not thousands, and queue behind the run and pool limits of dagster.yaml.
"""

import dagster as dg

AUTOMATION_SENSOR = "enrichment_automation"

enrichment_automation = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Re-enriches changed company batches and refreshes each source on its own cron.",
)

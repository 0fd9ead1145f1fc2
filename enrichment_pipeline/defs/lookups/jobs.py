"""The main job: every lookup and the profile, over company batches, in one process per run."""

import dagster as dg

from enrichment_pipeline.sources import SOURCES

ENRICH = "enrich_companies"

# In-process: a run is one process with one pool of at most pool_max connections; steps run one
# after another inside it, which is what the connection budget counts.
enrich_job = dg.define_asset_job(
    ENRICH,
    selection=dg.AssetSelection.assets(*SOURCES, "company_profile"),
    executor_def=dg.in_process_executor,
    description="Every register lookup and the joined profile, for the selected company batches.",
)

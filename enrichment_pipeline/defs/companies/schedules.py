"""The nightly refresh: re-read the full dump after the register rebuilds it (about 04:30 Oslo time).

The dump's ETag is checked with a HEAD request first, so an unchanged dump starts no run at all;
the run key is the ETag, so one dump is never imported twice by the schedule.
"""

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.companies.jobs import import_companies_job
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.sources import CRON_TIMEZONE
from enrichment_pipeline.store import companies as store

NIGHTLY_IMPORT = "nightly_register_import"


@dg.schedule(
    name=NIGHTLY_IMPORT,
    job=import_companies_job,
    cron_schedule="15 5 * * *",
    execution_timezone=CRON_TIMEZONE,
    # Off until an operator turns it on: it downloads the full register (about 210 MB) every night.
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-import the register's bulk dump after its nightly rebuild, unless its ETag is unchanged.",
)
def nightly_register_import(
    context: dg.ScheduleEvaluationContext, postgres: PostgresResource, registers: RegistersResource
) -> dg.RunRequest | dg.SkipReason:
    brreg = registers.brreg()
    head = brreg.dump_head()  # before the database is asked anything: no connection waits on the network
    etag = (head.headers.get("ETag") or "").strip('"') if head.error is None and head.status == 200 else ""
    if not etag:
        return dg.SkipReason(f"the dump at {brreg.dump_url()} gave no ETag ({head.error or f'HTTP {head.status}'}); "
                             "trying again tomorrow")
    last = store.get_setting(postgres, "dump_etag", f"schedule:{NIGHTLY_IMPORT}")
    if etag == last:
        return dg.SkipReason(f"the dump is unchanged since the last import (ETag {etag})")
    return dg.RunRequest(run_key=f"dump-{etag}", run_config={"ops": {"companies": {"config": {"source": brreg.dump_url()}}}},
                         tags={"enrichment/dump_etag": etag})

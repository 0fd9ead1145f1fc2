"""Resources, each registered once under one key."""

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.lookups.registers_resource import RegistersResource

POSTGRES = "postgres"
REGISTERS = "registers"


@dg.definitions
def resources() -> dg.Definitions:
    # In-process by default: one run is one process with one pool, the unit the budget counts
    # (Dagster's default multiprocess executor would start a process, and a pool, per step).
    return dg.Definitions(
        resources={POSTGRES: PostgresResource(), REGISTERS: RegistersResource()},
        executor=dg.in_process_executor,
    )

"""Resources, each registered once under one key."""

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.lookups.registers_resource import RegistersResource

POSTGRES = "postgres"
REGISTERS = "registers"


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={POSTGRES: PostgresResource(), REGISTERS: RegistersResource()})

"""Resources, each registered once under one key."""

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource

POSTGRES = "postgres"


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={POSTGRES: PostgresResource()})

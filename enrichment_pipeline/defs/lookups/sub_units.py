"""`sub_units`: the establishments (underenheter) of every company."""

from typing import Any

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.lookups.policies import lookup_asset
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.lookups.step import Lookup, LookupConfig, from_fetched, materialize_lookup
from enrichment_pipeline.registers.clients import BrregClient
from enrichment_pipeline.store.enrichments import Company, Outcome

SOURCE = "sub_units"
MAX_STORED = 100


def parse_sub_units(body: Any) -> dict[str, Any]:
    units = [u for u in body or [] if isinstance(u, dict)]
    return {
        "count": len(units),
        "employees": sum(u.get("antallAnsatte", 0) for u in units if isinstance(u.get("antallAnsatte"), int)),
        "sub_units": [
            {"orgnr": u.get("organisasjonsnummer"), "navn": u.get("navn"),
             "kommune": (u.get("beliggenhetsadresse") or {}).get("kommune")}
            for u in units[:MAX_STORED]
        ],
    }


def sub_units_lookup(brreg: BrregClient) -> Lookup:
    def lookup(company: Company) -> Outcome:
        return from_fetched(company, brreg.sub_units(company.orgnr), parse_sub_units)

    return lookup


@lookup_asset(SOURCE, "brreg", "Sub-units (establishments) per company from Enhetsregisteret.")
def sub_units(
    context: dg.AssetExecutionContext, config: LookupConfig, postgres: PostgresResource, registers: RegistersResource
) -> dg.MaterializeResult:
    return materialize_lookup(context, postgres, config, source=SOURCE,
                              lookup=sub_units_lookup(registers.brreg()), max_in_flight=registers.in_flight())

"""`address_location`: coordinates of every Norwegian business address (Kartverket)."""

from typing import Any

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.lookups.policies import lookup_asset
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.lookups.step import Lookup, LookupConfig, Skipping, from_fetched, materialize_lookup
from enrichment_pipeline.registers.clients import GeonorgeClient
from enrichment_pipeline.store.enrichments import Company, Outcome

SOURCE = "address_location"


def parse_addresses(body: Any) -> dict[str, Any] | None:
    hits = [a for a in (body or {}).get("adresser", []) if isinstance(a, dict)]
    if not hits:
        return None
    best = hits[0]
    point = best.get("representasjonspunkt") or {}
    return {
        "adressetekst": best.get("adressetekst"), "postnummer": best.get("postnummer"),
        "kommunenavn": best.get("kommunenavn"), "lat": point.get("lat"), "lon": point.get("lon"),
        "epsg": point.get("epsg"), "matches": len(hits),
    }


def no_norwegian_address(company: Company) -> str | None:
    if company.landkode not in (None, "NO") or not company.postnummer or not company.address_lines:
        return "no Norwegian street address to look up"
    return None


def location_lookup(geonorge: GeonorgeClient) -> Lookup:
    def lookup(company: Company) -> Outcome:
        outcome = from_fetched(company, geonorge.search(company.address_lines[0], postnummer=company.postnummer), parse_addresses)
        if outcome.outcome == "ok" and outcome.data is None:  # the search answered, with no hit
            return Outcome(company.orgnr, "not_found", outcome.http_status, None, None, outcome.attempts, outcome.latency_s)
        return outcome

    return Skipping(lookup, no_norwegian_address)


@lookup_asset(SOURCE, "geonorge", "Coordinates of each company's business address from Kartverket.")
def address_location(
    context: dg.AssetExecutionContext, config: LookupConfig, postgres: PostgresResource, registers: RegistersResource
) -> dg.MaterializeResult:
    return materialize_lookup(context, postgres, config, source=SOURCE,
                              lookup=location_lookup(registers.geonorge()), max_in_flight=registers.in_flight())

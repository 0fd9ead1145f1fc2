"""`company_roles`: board, CEO, auditor and owner of every company (Enhetsregisteret /roller)."""

from typing import Any

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.lookups.policies import lookup_asset
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.lookups.step import Lookup, LookupConfig, from_fetched, materialize_lookup
from enrichment_pipeline.registers.clients import BrregClient
from enrichment_pipeline.store.enrichments import Company, Outcome

SOURCE = "company_roles"


def _holder(role: dict[str, Any]) -> dict[str, Any]:
    if isinstance(person := role.get("person"), dict):
        name = person.get("navn") or {}
        full = " ".join(p for p in (name.get("fornavn"), name.get("mellomnavn"), name.get("etternavn")) if p)
        return {"person": full, "fodselsdato": person.get("fodselsdato"), "erDoed": person.get("erDoed", False)}
    if isinstance(unit := role.get("enhet"), dict):
        names = unit.get("navn")
        return {"orgnr": unit.get("organisasjonsnummer"), "navn": " ".join(names) if isinstance(names, list) else names}
    return {}


def parse_roles(body: Any) -> dict[str, Any]:
    """Role groups as {group code: [{role code, holder...}]}, keeping only current roles."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for group in (body or {}).get("rollegrupper", []):
        code = (group.get("type") or {}).get("kode", "?")
        for role in group.get("roller", []):
            if role.get("avregistrert"):
                continue
            groups.setdefault(code, []).append({"rolle": (role.get("type") or {}).get("kode"), **_holder(role)})
    return {"groups": groups, "roles": sum(len(v) for v in groups.values())}


def roles_lookup(brreg: BrregClient) -> Lookup:
    def lookup(company: Company) -> Outcome:
        return from_fetched(company, brreg.roles(company.orgnr), parse_roles)

    return lookup


@lookup_asset(SOURCE, "brreg", "Roles (CEO, board, auditor, owner) per company from Enhetsregisteret.")
def company_roles(
    context: dg.AssetExecutionContext, config: LookupConfig, postgres: PostgresResource, registers: RegistersResource
) -> dg.MaterializeResult:
    return materialize_lookup(context, postgres, config, source=SOURCE,
                              lookup=roles_lookup(registers.brreg()), max_in_flight=registers.in_flight())

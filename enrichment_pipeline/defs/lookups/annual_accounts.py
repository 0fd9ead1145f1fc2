"""`annual_accounts`: the latest filed accounts (Regnskapsregisteret), for forms that file them."""

from typing import Any

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.lookups.policies import lookup_asset
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.lookups.step import Lookup, LookupConfig, Skipping, from_fetched, materialize_lookup
from enrichment_pipeline.registers.clients import BrregClient
from enrichment_pipeline.store.enrichments import Company, Outcome

SOURCE = "annual_accounts"

# Organisation forms with a duty to file annual accounts; every other form is skipped, not asked:
# at a polite 5-10 requests/s, each call saved is time saved.
FILING_FORMS = frozenset({"AS", "ASA", "SA", "NUF", "BBL", "BRL", "STI", "SF", "IKS", "ANS", "DA", "KS", "SE", "SPA", "SAM"})


def _filing(filing: dict[str, Any]) -> dict[str, Any]:
    result = filing.get("resultatregnskapResultat") or {}
    operating = (result.get("driftsresultat") or {})
    income = (operating.get("driftsinntekter") or {})
    return {
        "regnskapstype": filing.get("regnskapstype"),
        "periode_til": (filing.get("regnskapsperiode") or {}).get("tilDato"),
        "valuta": filing.get("valuta"),
        # Holding companies send "driftsinntekter": {}: the sum is absent, not zero.
        "sumDriftsinntekter": income.get("sumDriftsinntekter"),
        "driftsresultat": operating.get("driftsresultat"),
        "aarsresultat": result.get("aarsresultat"),
        "sumEiendeler": (filing.get("eiendeler") or {}).get("sumEiendeler"),
    }


def parse_accounts(body: Any) -> dict[str, Any]:
    filings = [_filing(f) for f in body or [] if isinstance(f, dict)]
    filings.sort(key=lambda f: (f["periode_til"] or "", f["regnskapstype"] == "SELSKAP"), reverse=True)
    return {"filings": filings, "latest": filings[0] if filings else None}


def files_no_accounts(company: Company) -> str | None:
    if company.organisasjonsform in FILING_FORMS:
        return None
    return f"organisasjonsform {company.organisasjonsform} files no annual accounts"


def accounts_lookup(brreg: BrregClient) -> Lookup:
    def lookup(company: Company) -> Outcome:
        return from_fetched(company, brreg.accounts(company.orgnr), parse_accounts)

    return Skipping(lookup, files_no_accounts)


@lookup_asset(SOURCE, "regnskap", "Latest annual accounts per company from Regnskapsregisteret.")
def annual_accounts(
    context: dg.AssetExecutionContext, config: LookupConfig, postgres: PostgresResource, registers: RegistersResource
) -> dg.MaterializeResult:
    return materialize_lookup(context, postgres, config, source=SOURCE,
                              lookup=accounts_lookup(registers.brreg()), max_in_flight=registers.in_flight())

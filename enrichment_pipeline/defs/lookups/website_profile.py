"""`website_profile`: title, description, e-mail, phone and social links from each home page."""

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.lookups.policies import lookup_asset
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.lookups.step import Lookup, LookupConfig, Skipping, materialize_lookup
from enrichment_pipeline.registers.homepage import HomepageFetcher
from enrichment_pipeline.store.enrichments import Company, Outcome

SOURCE = "website_profile"


def no_home_page(company: Company) -> str | None:
    return None if company.hjemmeside else "no hjemmeside"


def homepage_lookup(fetcher: HomepageFetcher) -> Lookup:
    def lookup(company: Company) -> Outcome:
        page = fetcher.fetch(company.hjemmeside)
        data = None
        if page.outcome == "ok":
            data = {"url": page.url, "title": page.title, "description": page.description,
                    "emails": list(page.emails), "phones": list(page.phones), "social": list(page.social)}
        error = page.reason if page.outcome != "ok" else None
        return Outcome(company.orgnr, page.outcome, page.status, error, data, 1, page.latency_s)

    return Skipping(lookup, no_home_page)


@lookup_asset(SOURCE, "homepages", "What each company's own home page says about it (robots.txt honoured).")
def website_profile(
    context: dg.AssetExecutionContext, config: LookupConfig, postgres: PostgresResource, registers: RegistersResource
) -> dg.MaterializeResult:
    return materialize_lookup(context, postgres, config, source=SOURCE,
                              lookup=homepage_lookup(registers.homepages()), max_in_flight=registers.in_flight())

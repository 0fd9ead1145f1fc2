"""enrichment-pipeline: every Norwegian organisation, enriched from public registers, within a connection budget."""

__version__ = "0.1.0"

ATTRIBUTION = (
    "Inneholder data under Norsk lisens for offentlige data (NLOD) 2.0 "
    "tilgjengeliggjort av Brønnøysundregistrene."
)

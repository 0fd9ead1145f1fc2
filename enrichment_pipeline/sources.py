"""The enrichment sources and per-company outcomes: named once, used everywhere."""

SOURCES: tuple[str, ...] = ("company_roles", "annual_accounts", "sub_units", "address_location", "website_profile")
OUTCOMES: tuple[str, ...] = ("ok", "not_found", "deleted", "gone", "error", "skipped")

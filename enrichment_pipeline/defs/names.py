"""Group names, concurrency pools and tags: defined once, imported everywhere else."""

GROUP_REGISTER = "register"
GROUP_LOOKUPS = "lookups"

# Concurrency pools (Dagster `pool=`): each caps how many steps may hold the database at once.
POOL_IMPORT = "pg_import"
POOL_LOOKUPS = "pg_lookups"
POOL_PROFILE = "pg_profile"

# One slow register must not take every run slot (see dagster.yaml tag_concurrency_limits).
REGISTER_TAG = "enrichment/register"

# Asset keys other modules depend on.
COMPANIES = "companies"
# A partition of this asset is materialized whenever a company of that batch is new, changed,
# deleted or removed, by the import or by the change feed; every lookup depends on it.
COMPANY_CHANGES = "company_changes"

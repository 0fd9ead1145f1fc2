"""Jobs over the register."""

import dagster as dg

IMPORT_COMPANIES = "import_companies"

import_companies_job = dg.define_asset_job(
    IMPORT_COMPANIES, selection=["companies"], executor_def=dg.in_process_executor, description="Import the register's bulk dump."
)

"""`enrichment-pipeline dev`: the Dagster webserver and daemon on the project's instance."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from enrichment_pipeline import settings
from enrichment_pipeline.cli.common import project_postgres
from enrichment_pipeline.instance import apply_dagster_environment

# The webserver keeps a pool of 1 + this per storage; the budget counts exactly this figure.
WEBSERVER_DB_POOL_MAX_OVERFLOW = 4


def run(args: argparse.Namespace) -> int:
    from enrichment_pipeline.budget.check import require_fits
    from enrichment_pipeline.budget.pools import ensure_pool_limits
    from enrichment_pipeline.instance import project_instance

    with project_postgres("dev") as postgres:  # the schema is at head before Dagster starts
        budget = require_fits(postgres, webserver_overflow=WEBSERVER_DB_POOL_MAX_OVERFLOW)
    env = apply_dagster_environment()
    ensure_pool_limits(project_instance())
    print(f"connection budget: worst case {budget.worst_case} of {budget.available} the server allows")
    root = settings.project_root()
    command = [
        str(Path(sys.executable).with_name("dagster")), "dev",
        "-w", str(root / "workspace.yaml"),
        "-p", str(args.port),
        "--db-pool-max-overflow", str(WEBSERVER_DB_POOL_MAX_OVERFLOW),
    ]
    print(f"Dagster UI on http://127.0.0.1:{args.port} (DAGSTER_HOME={env['DAGSTER_HOME']}); Ctrl-C stops it")
    return subprocess.call(command, cwd=root, env={**os.environ, **env})

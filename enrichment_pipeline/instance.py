"""The project's Dagster instance: the top-level dagster.yaml with its storage on our PostgreSQL."""

from __future__ import annotations

import os

from enrichment_pipeline import settings
from enrichment_pipeline.db import connect


def dagster_environment() -> dict[str, str]:
    """The variables the top-level dagster.yaml reads; the psycopg2 URL names its driver explicitly."""
    return {
        "DAGSTER_HOME": str(settings.project_root()),
        "ENRICHMENT_DAGSTER_PG_URL": connect.dagster_database_url().render("psycopg2", show_password=True),
    }


def apply_dagster_environment() -> dict[str, str]:
    env = dagster_environment()
    os.environ.update(env)
    return env


def project_instance():  # -> dagster.DagsterInstance (imported lazily: the CLI starts fast)
    import dagster as dg

    apply_dagster_environment()
    return dg.DagsterInstance.get()

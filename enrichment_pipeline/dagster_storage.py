"""Dagster's own storage (runs, events, schedules) on the project's PostgreSQL, in its own database.

dagster.yaml names this class, so plain `dagster dev -w workspace.yaml`, `dg check defs` and
`dagster definitions validate` work from a fresh clone with no environment set: the URL comes
from `postgres_url` in dagster.yaml, else ENRICHMENT_DAGSTER_PG_URL (the CLI sets it), else
DAGSTER_DATABASE_URL / DATABASE_URL, else the embedded server (started on demand). The URL names
psycopg2 explicitly: dagster-postgres brings psycopg2, and SQLAlchemy 2.1 maps a bare
postgresql:// to psycopg 3 (dagster issue #33958).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from dagster_postgres import DagsterPostgresStorage

URL_ENV = "ENRICHMENT_DAGSTER_PG_URL"


def dagster_storage_url() -> str:
    explicit = os.environ.get(URL_ENV)
    if explicit:
        return explicit
    from enrichment_pipeline.db import connect

    return connect.dagster_database_url().render("psycopg2", show_password=True)


class ProjectPostgresStorage(DagsterPostgresStorage):
    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "postgres_url": dg.Field(dg.StringSource, is_required=False),
            "should_autocreate_tables": dg.Field(bool, is_required=False, default_value=True),
        }

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: dict[str, Any]) -> "ProjectPostgresStorage":
        return cls(
            postgres_url=config_value.get("postgres_url") or dagster_storage_url(),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
        )

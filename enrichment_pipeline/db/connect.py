"""Which PostgreSQL the project uses: `DATABASE_URL` when set, else the embedded server.

Resolved when asked, never at import. For the embedded server the project and Dagster databases
are created on first use; with `DATABASE_URL` the project database must exist and Dagster's
storage goes to `DAGSTER_DATABASE_URL`, or to `<database>_dagster` on the same server.
"""

from __future__ import annotations

import os
import threading

from enrichment_pipeline import settings
from enrichment_pipeline.db import embedded
from enrichment_pipeline.db.urls import DatabaseUrl

_ensured: set[tuple[str, int, str]] = set()
_lock = threading.Lock()


def uses_embedded() -> bool:
    return not os.environ.get(settings.DATABASE_URL_ENV)


def server_url() -> DatabaseUrl:
    """The server's maintenance database (`postgres`), for administration."""
    configured = os.environ.get(settings.DATABASE_URL_ENV)
    if configured:
        return DatabaseUrl.parse(configured).with_database("postgres")
    return embedded.start(settings.state_dir()).url("postgres")


def project_database_url(explicit: str | None = None) -> DatabaseUrl:
    """The URL of the project's own data."""
    if explicit:
        return DatabaseUrl.parse(explicit)
    configured = os.environ.get(settings.DATABASE_URL_ENV)
    if configured:
        return DatabaseUrl.parse(configured)
    url = embedded.start(settings.state_dir()).url(settings.PROJECT_DATABASE)
    ensure_database(url)
    return url


def dagster_database_url() -> DatabaseUrl:
    """Where Dagster keeps runs, events and schedules: its own database on the same server."""
    explicit = os.environ.get(settings.DAGSTER_DATABASE_URL_ENV)
    if explicit:
        return DatabaseUrl.parse(explicit)
    project = project_database_url()
    name = settings.DAGSTER_DATABASE if uses_embedded() else f"{project.database}_dagster"
    url = project.with_database(name)
    ensure_database(url)
    return url


def ensure_database(url: DatabaseUrl) -> None:
    """Create `url.database` if the server lacks it (once per process)."""
    key = (url.host, url.port, url.database)
    with _lock:
        if key in _ensured:
            return
        from enrichment_pipeline.db.resource import PostgresResource

        admin = PostgresResource(database_url=url.with_database("postgres").render(show_password=True), pool_max=1)
        with admin.opened("db-create") as pg, pg.connection() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [url.database]).fetchone()
            if not exists:
                from psycopg import sql

                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
        _ensured.add(key)

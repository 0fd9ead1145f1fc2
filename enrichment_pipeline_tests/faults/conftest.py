"""Database fixtures of the fault suite: a PostgreSQL server of its own, which tests may restart.

Restarting or starving the shared test server would break every other test running at the same
time, so the database fault tests get a dedicated embedded server (a real PostgreSQL from the same
wheel, its data in a temporary folder), started once per session and stopped at its end. Only
the project's data lives there; Dagster's own storage, where a test needs one, stays elsewhere.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql

from enrichment_pipeline.db import embedded, migrate
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.db.urls import DatabaseUrl
from enrichment_pipeline_tests.conftest import make_resource

FAULT_DATABASE = "enrichment_faults"


@dataclass(frozen=True)
class DedicatedServer:
    """The fault suite's own PostgreSQL: `restart()` it, or reach it through a proxy on `port`."""

    base: Path
    port: int
    password: str

    def url(self, database: str = FAULT_DATABASE) -> DatabaseUrl:
        return DatabaseUrl(user=embedded.SUPERUSER, password=self.password, host="127.0.0.1", port=self.port,
                           database=database)

    def restart(self) -> None:
        """A real stop (fast: every backend is terminated) and start, on the same port."""
        self.stop()
        self.start()

    def stop(self) -> None:
        assert embedded.stop(self.base), "the dedicated server was not running"

    def start(self) -> None:
        server = embedded.start(self.base)
        assert server.port == self.port, "the restarted server must listen where the clients connect"


@pytest.fixture(scope="session")
def dedicated_server() -> Iterator[DedicatedServer]:
    # Not under pytest's basetemp: every pytest session that starts (other suites run side by side)
    # resets pytest-of-<user> to mode 0700, and the server runs as an unprivileged user when we are root.
    base = Path(tempfile.mkdtemp(prefix="enrichment-fault-postgres-"))
    server = embedded.start(base)
    try:
        yield DedicatedServer(base, server.port, server.password)
    finally:
        embedded.stop(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def fault_db_url(dedicated_server: DedicatedServer) -> DatabaseUrl:
    """The project's schema, migrated to head, in a database on the dedicated server."""
    admin = make_resource(dedicated_server.url("postgres").render(show_password=True), pool_max=1)
    with admin.opened("tests-faults-admin") as pg, pg.connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(FAULT_DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(FAULT_DATABASE)))
    url = dedicated_server.url()
    with make_resource(url.render(show_password=True)).opened("tests-faults-migrate") as pg:
        migrate.upgrade(pg)
    return url


def empty_project_tables(postgres: PostgresResource) -> None:
    """Every table of the project's schema emptied (the migrations' own bookkeeping kept)."""
    with postgres.connection() as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'").fetchall()]
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, tables))))


@pytest.fixture()
def fault_postgres(fault_db_url: DatabaseUrl) -> Iterator[PostgresResource]:
    """An opened pool on the dedicated server's project database, every table emptied first."""
    with make_resource(fault_db_url.render(show_password=True), pool_max=4).opened("tests-faults") as pg:
        empty_project_tables(pg)
        yield pg

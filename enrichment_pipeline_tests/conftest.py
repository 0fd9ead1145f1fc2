"""Shared fixtures: a real PostgreSQL for every test, never a mock and never SQLite.

With DATABASE_URL (or TEST_DATABASE_URL) set, tests use that server; otherwise the project's
embedded server. Either way they get a database of their own, `enrichment_test` (or
`ENRICHMENT_TEST_DATABASE`, so two sessions can run side by side), recreated per session and
migrated to head, so a user's data is never touched.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from psycopg import sql

from enrichment_pipeline.db import connect, migrate
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.db.urls import DatabaseUrl
from enrichment_pipeline.defs.companies.partitions import COMPANY_BATCHES, batch_keys
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.registers.faults import Faults
from enrichment_pipeline.registers.service import RegistersService

BATCHES = 6  # the generated 3,000 units in batches of about 500
TEST_DATABASE = os.environ.get("ENRICHMENT_TEST_DATABASE", "enrichment_test")
TABLES = ("rejected_units", "imports", "companies", "enrichments", "company_profiles", "sync_cursors", "pipeline_settings",
          "batch_changes")


def _server_url() -> DatabaseUrl:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return DatabaseUrl.parse(explicit).with_database("postgres")
    return connect.server_url()


@pytest.fixture(scope="session")
def test_db_url() -> Iterator[DatabaseUrl]:
    server = _server_url()
    admin = PostgresResource(database_url=server.render(show_password=True), pool_max=1)
    with admin.opened("tests-admin") as pg, pg.connection() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [TEST_DATABASE],
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEST_DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEST_DATABASE)))
    url = server.with_database(TEST_DATABASE)
    with PostgresResource(database_url=url.render(show_password=True)).opened("tests-migrate") as pg:
        migrate.upgrade(pg)
    yield url


@pytest.fixture(scope="session")
def test_db_url_text(test_db_url: DatabaseUrl) -> str:
    return test_db_url.render(show_password=True)


def make_resource(url_text: str, **settings: object) -> PostgresResource:
    return PostgresResource(database_url=url_text, **settings)  # type: ignore[arg-type]


@pytest.fixture()
def postgres(test_db_url_text: str) -> Iterator[PostgresResource]:
    """An opened project resource on a clean test database."""
    resource = make_resource(test_db_url_text, pool_max=4)
    with resource.opened("tests") as pg:
        with pg.connection() as conn:
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))
        yield pg


@pytest.fixture()
def observer(test_db_url_text: str) -> Iterator[PostgresResource]:
    """A second pool that watches pg_stat_activity while the pool under test works."""
    with make_resource(test_db_url_text, pool_max=1).opened("observer") as pg:
        yield pg


StartService = Callable[..., RegistersService]


@pytest.fixture
def registers_service() -> Iterator[StartService]:
    """A factory: `registers_service(data_dir, faults=None, **kwargs)` starts a service on an
    ephemeral port; every service it started is stopped when the test ends."""
    started: list[RegistersService] = []

    def start(data_dir: Path, faults: Faults | None = None, **kwargs: Any) -> RegistersService:
        service = RegistersService(data_dir, faults=faults, **kwargs).start()
        started.append(service)
        return service

    yield start
    for service in reversed(started):
        service.stop()


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 generated units with a change feed of 60 updates, shared by the tests that need data."""
    from enrichment_pipeline.registers.generator import generate

    out = tmp_path_factory.mktemp("generated")
    generate(out, companies=3000, seed=11, changes=60)
    return out


@pytest.fixture()
def instance() -> Iterator[dg.DagsterInstance]:
    """A throwaway Dagster instance that knows the BATCHES company batches."""
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions(COMPANY_BATCHES.name, batch_keys(BATCHES))
        yield inst


def jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one of the generator's .jsonl.gz files."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def local_registers(service: RegistersService, **overrides: Any) -> RegistersResource:
    """The registers resource pointed at a local service: every base URL, home pages resolved to it,
    no rate limit, short timeouts and backoff."""
    settings: dict[str, Any] = {
        "brreg_api_url": service.base_url, "geonorge_api_url": service.base_url, "rate_limit_per_s": 0.0,
        "max_in_flight": 16, "homepage_resolve": service.base_url.split("://", 1)[1],
        "homepage_allow_private_addresses": True, "timeout_s": 2.0, "retries": 3, "backoff_base_s": 0.02,
    }
    settings.update(overrides)
    return RegistersResource(**settings)


def roles_answers(generated: Path, orgnrs: Iterable[str]) -> dict[str, tuple[str, int]]:
    """(outcome, HTTP status) the local service's roles register gives each company when nothing goes
    wrong: gone (410) for a removed unit, deleted (200 with slettedato), else ok or not_found (404)."""
    states = {u["organisasjonsnummer"]: u["state"] for u in jsonl(generated / "units.jsonl.gz")}
    with_roles = {r["organisasjonsnummer"] for r in jsonl(generated / "roles.jsonl.gz")}
    answers = {}
    for orgnr in orgnrs:
        state = states.get(orgnr, "active")
        answers[orgnr] = {"removed": ("gone", 410), "deleted": ("deleted", 200)}.get(
            state, ("ok", 200) if orgnr in with_roles else ("not_found", 404))
    return answers

"""Schema through Alembic migrations, applied over the Postgres resource's own pool."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from enrichment_pipeline.db.resource import PostgresResource

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "enrichment_alembic_version"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return str(ScriptDirectory.from_config(_config()).get_current_head())


def current_revision(postgres: PostgresResource) -> str | None:
    with postgres.sqlalchemy_connection("db-upgrade") as connection:
        return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(postgres: PostgresResource) -> tuple[str | None, str]:
    """Bring the schema to head; returns (revision before, revision after)."""
    before = current_revision(postgres)
    if before != head_revision():
        config = _config()
        with postgres.sqlalchemy_connection("db-upgrade") as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
    return before, head_revision()

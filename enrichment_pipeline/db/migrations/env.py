"""Alembic environment: migrations run on a connection the Postgres resource hands over."""

from alembic import context

VERSION_TABLE = "enrichment_alembic_version"  # Dagster's storage has its own alembic_version

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()

"""Keeping the register current: changed batches waiting to be reported, and the register's own fields.

`batch_changes` is an outbox: the import and the change feed record, in the same transaction as
their writes, which company batches changed; Dagster is told afterwards (as materializations of
`company_changes`), and a row is only removed once that report is known to have been stored, so a
crash between the two loses nothing.

`register_fields(record)` is a unit as the register describes it, without the hypermedia links
(`links` in the dump, `_links` in the API) and the response class: the dump and the API spell the
same unit differently, and only a real change of the unit may count as a change.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE SEQUENCE batch_changes_version;
        CREATE TABLE batch_changes (
            batch integer PRIMARY KEY,
            version bigint NOT NULL DEFAULT nextval('batch_changes_version'),
            changed_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE FUNCTION register_fields(record jsonb) RETURNS jsonb
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT coalesce(jsonb_object_agg(
                       key, CASE WHEN jsonb_typeof(value) = 'object' THEN value - 'links' - '_links' ELSE value END),
                   '{}'::jsonb)
            FROM jsonb_each(record)
            WHERE key NOT IN ('links', '_links', 'respons_klasse')
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS register_fields(jsonb); DROP TABLE IF EXISTS batch_changes; DROP SEQUENCE IF EXISTS batch_changes_version")

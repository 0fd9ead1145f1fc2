"""Companies, rejects, imports, enrichment outcomes and profiles.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE pipeline_settings (
            key text PRIMARY KEY,
            value text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE imports (
            id bigserial PRIMARY KEY,
            source text NOT NULL,
            format text,
            etag text,
            status text NOT NULL DEFAULT 'running',
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            rows_read bigint NOT NULL DEFAULT 0,
            rows_upserted bigint NOT NULL DEFAULT 0,
            rows_rejected bigint NOT NULL DEFAULT 0,
            rows_deleted bigint NOT NULL DEFAULT 0,
            error text
        );

        -- The register: the whole record as the register sent it plus typed columns for queries.
        CREATE TABLE companies (
            orgnr char(9) PRIMARY KEY,
            navn text NOT NULL,
            organisasjonsform text,
            naeringskode1 text,
            antall_ansatte integer,
            hjemmeside text,
            postnummer text,
            kommunenummer text,
            landkode text,
            stiftelsesdato date,
            batch integer NOT NULL,
            record jsonb NOT NULL,
            record_hash text NOT NULL,
            first_seen_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            deleted_at timestamptz,
            last_import_id bigint
        );
        CREATE INDEX companies_batch_idx ON companies (batch) INCLUDE (orgnr);
        CREATE INDEX companies_live_idx ON companies (batch) WHERE deleted_at IS NULL;

        CREATE TABLE rejected_units (
            id bigserial PRIMARY KEY,
            import_id bigint REFERENCES imports (id) ON DELETE CASCADE,
            position bigint NOT NULL,
            orgnr text,
            reason text NOT NULL,
            raw text NOT NULL,
            rejected_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX rejected_units_import_idx ON rejected_units (import_id, reason);

        -- One row per company and source: the latest outcome of that lookup and its data.
        CREATE TABLE enrichments (
            orgnr char(9) NOT NULL,
            source text NOT NULL,
            outcome text NOT NULL CHECK (outcome IN ('ok', 'not_found', 'deleted', 'gone', 'error', 'skipped')),
            http_status integer,
            error text,
            data jsonb,
            attempts integer NOT NULL DEFAULT 1,
            latency_ms real,
            fetched_at timestamptz NOT NULL DEFAULT now(),
            run_id text,
            PRIMARY KEY (orgnr, source)
        );
        CREATE INDEX enrichments_source_outcome_idx ON enrichments (source, outcome);

        -- One row per company joining every source with its freshness.
        CREATE TABLE company_profiles (
            orgnr char(9) PRIMARY KEY,
            batch integer NOT NULL,
            profile jsonb NOT NULL,
            sources_ok integer NOT NULL,
            sources_pending integer NOT NULL,
            oldest_fetch_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE sync_cursors (
            name text PRIMARY KEY,
            position bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS sync_cursors, company_profiles, enrichments, rejected_units, companies, imports, pipeline_settings"
    )

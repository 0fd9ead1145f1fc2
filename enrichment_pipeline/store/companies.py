"""SQL for the register table: staging, upsert, deletion marks, rejects, settings, one company."""

from __future__ import annotations

from typing import Any

import psycopg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.errors import BadDumpError

_TYPED = "orgnr, navn, organisasjonsform, naeringskode1, antall_ansatte, hjemmeside, postnummer, kommunenummer, landkode, stiftelsesdato"
STAGE_COPY = f"COPY stage_companies ({_TYPED}, batch, record, record_hash, position) FROM STDIN"
# The first import into an empty table needs no staging: the transaction still guards it.
DIRECT_COPY = f"COPY companies ({_TYPED}, batch, record, record_hash, last_import_id) FROM STDIN (FREEZE)"

# Staging lives and dies with the import's transaction: a failed import leaves nothing behind.
_CREATE_STAGING = """
CREATE TEMP TABLE stage_companies (
    orgnr text, navn text, organisasjonsform text, naeringskode1 text, antall_ansatte integer,
    hjemmeside text, postnummer text, kommunenummer text, landkode text, stiftelsesdato date,
    batch integer, record text, record_hash text, position bigint
) ON COMMIT DROP
"""

# A unit counts as changed (updated_at moves, its lookups become stale) only when the register's
# own fields differ or it comes back from deletion: the dump and the API spell the same unit with
# different links, so a differing text alone is not a change (its hash is still brought up to date).
_CHANGED = "c.deleted_at IS NOT NULL OR register_fields(c.record) IS DISTINCT FROM register_fields(EXCLUDED.record)"

_UPSERT = f"""
WITH up AS (
    INSERT INTO companies AS c ({_TYPED}, batch, record, record_hash, last_import_id)
    SELECT {_TYPED}, batch, record::jsonb, record_hash, %(import_id)s FROM stage_companies
    ON CONFLICT (orgnr) DO UPDATE SET
        navn = EXCLUDED.navn, organisasjonsform = EXCLUDED.organisasjonsform,
        naeringskode1 = EXCLUDED.naeringskode1, antall_ansatte = EXCLUDED.antall_ansatte,
        hjemmeside = EXCLUDED.hjemmeside, postnummer = EXCLUDED.postnummer,
        kommunenummer = EXCLUDED.kommunenummer, landkode = EXCLUDED.landkode,
        stiftelsesdato = EXCLUDED.stiftelsesdato, record = EXCLUDED.record,
        record_hash = EXCLUDED.record_hash, deleted_at = NULL, last_import_id = EXCLUDED.last_import_id,
        updated_at = CASE WHEN {_CHANGED} THEN now() ELSE c.updated_at END
    WHERE c.record_hash IS DISTINCT FROM EXCLUDED.record_hash OR c.deleted_at IS NOT NULL
    RETURNING (xmax = 0) AS inserted, c.updated_at = now() AS changed, c.batch
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE changed AND NOT inserted),
       coalesce(array_agg(DISTINCT batch) FILTER (WHERE changed), '{{}}')
FROM up
"""

_ABSENT = "c.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM stage_companies s WHERE s.orgnr = c.orgnr)"


def companies_empty(conn: psycopg.Connection) -> bool:
    """Lock the table for the import and tell whether it is empty (then COPY goes straight in)."""
    conn.execute("LOCK TABLE companies IN SHARE ROW EXCLUSIVE MODE")
    empty = bool(conn.execute("SELECT NOT EXISTS (SELECT 1 FROM companies)").fetchone()[0])
    if empty:
        # Truncating in the loading transaction lets COPY FREEZE write frozen rows and, with
        # wal_level=minimal, skip the WAL; the rollback of a failed import undoes it.
        conn.execute("TRUNCATE companies CASCADE")
    return empty


def create_staging(conn: psycopg.Connection) -> None:
    conn.execute(_CREATE_STAGING)


def batch_count(postgres: PostgresResource, requested: int, holder: object = None) -> int:
    """The number of company batches: fixed by the first import, so batches stay stable."""
    if requested < 1:
        raise BadDumpError(f"the number of batches must be at least 1 (got {requested})")
    with postgres.transaction(holder) as conn:
        conn.execute(
            "INSERT INTO pipeline_settings (key, value) VALUES ('batches', %s) ON CONFLICT (key) DO NOTHING",
            [str(requested)],
        )
        return int(conn.execute("SELECT value FROM pipeline_settings WHERE key = 'batches'").fetchone()[0])


def get_setting(postgres: PostgresResource, key: str, holder: object = None) -> str | None:
    with postgres.connection(holder) as conn:
        row = conn.execute("SELECT value FROM pipeline_settings WHERE key = %s", [key]).fetchone()
    return row[0] if row else None


def put_setting(conn: psycopg.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO pipeline_settings (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        [key, value],
    )


def delete_setting(conn: psycopg.Connection, key: str) -> None:
    conn.execute("DELETE FROM pipeline_settings WHERE key = %s", [key])


def live_vs_last_import(postgres: PostgresResource, holder: object = None) -> tuple[int, int | None]:
    """(live companies, valid units of the last successful import's dump); None before any import."""
    with postgres.connection(holder) as conn:
        live = conn.execute("SELECT count(*) FROM companies WHERE deleted_at IS NULL").fetchone()[0]
        row = conn.execute(
            "SELECT rows_read - rows_rejected FROM imports WHERE status = 'succeeded' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return int(live), (int(row[0]) if row else None)


def start_import(postgres: PostgresResource, source: str, etag: str | None, holder: object = None) -> int:
    with postgres.transaction(holder) as conn:
        return int(conn.execute(
            "INSERT INTO imports (source, etag) VALUES (%s, %s) RETURNING id", [source, etag]
        ).fetchone()[0])


def finish_import(
    conn: psycopg.Connection, import_id: int, fmt: str, read: int, upserted: int, rejected: int, deleted: int
) -> None:
    conn.execute(
        "UPDATE imports SET status = 'succeeded', finished_at = now(), format = %s, rows_read = %s, "
        "rows_upserted = %s, rows_rejected = %s, rows_deleted = %s WHERE id = %s",
        [fmt, read, upserted, rejected, deleted, import_id],
    )


def fail_import(postgres: PostgresResource, import_id: int, error: str, holder: object = None) -> None:
    with postgres.transaction(holder) as conn:
        conn.execute("UPDATE imports SET status = 'failed', finished_at = now(), error = %s WHERE id = %s", [error, import_id])


def write_rejects(conn: psycopg.Connection, import_id: int, rejects: list[tuple[int, str | None, str, str]]) -> None:
    if not rejects:
        return
    with conn.cursor().copy("COPY rejected_units (import_id, position, orgnr, reason, raw) FROM STDIN") as copy:
        for position, orgnr, reason, raw in rejects:
            copy.write_row((import_id, position, orgnr, reason, raw.replace("\x00", "")))


def mark_absent_deleted(conn: psycopg.Connection, max_delete_share: float) -> tuple[int, list[int]]:
    """Mark units missing from this full dump as deleted (never purged); refuse a mass deletion."""
    conn.execute("CREATE INDEX ON stage_companies (orgnr)")
    conn.execute("ANALYZE stage_companies")
    live = conn.execute("SELECT count(*) FROM companies WHERE deleted_at IS NULL").fetchone()[0]
    absent = conn.execute(f"SELECT count(*) FROM companies c WHERE {_ABSENT}").fetchone()[0]
    if live and absent > max_delete_share * live:
        raise BadDumpError(
            f"this dump lacks {absent} of {live} live companies (more than max_delete_share={max_delete_share:g}); "
            "refusing to mark them deleted: is the dump partial?"
        )
    if not absent:
        return 0, []
    rows = conn.execute(f"UPDATE companies c SET deleted_at = now(), updated_at = now() WHERE {_ABSENT} RETURNING batch").fetchall()
    return len(rows), sorted({r[0] for r in rows})


def upsert_from_staging(conn: psycopg.Connection, import_id: int) -> tuple[int, int, list[int]]:
    inserted, updated, batches = conn.execute(_UPSERT, {"import_id": import_id}).fetchone()
    return int(inserted), int(updated), list(batches)


def company(postgres: PostgresResource, orgnr: str, holder: object = None) -> dict[str, Any] | None:
    """One company with every enrichment, for `show`."""
    with postgres.connection(holder) as conn:
        row = conn.execute(
            "SELECT record, batch, deleted_at, updated_at FROM companies WHERE orgnr = %s", [orgnr]
        ).fetchone()
        if row is None:
            return None
        enrichments = conn.execute(
            "SELECT source, outcome, http_status, error, fetched_at, data FROM enrichments WHERE orgnr = %s ORDER BY source",
            [orgnr],
        ).fetchall()
    record, batch, deleted_at, updated_at = row
    return {
        "record": record,
        "batch": batch,
        "deleted_at": deleted_at,
        "updated_at": updated_at,
        "enrichments": {
            source: {"status": outcome, "http_status": status, "error": error, "fetched_at": fetched, "data": data}
            for source, outcome, status, error, fetched, data in enrichments
        },
    }

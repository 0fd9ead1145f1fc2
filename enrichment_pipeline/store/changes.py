"""SQL for keeping the register current: the change-feed cursor, applying updates, changed batches.

Everything one page of the change feed does is written in one transaction together with the
feed's new position, so applying and advancing the cursor cannot come apart. Which batches
changed goes into the `batch_changes` outbox in that same transaction; Dagster hears of them
afterwards, and a batch leaves the outbox only once that report is known to be stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.importer.validate import Typed, batch_of
from enrichment_pipeline.store.enrichments import purge_units

FEED = "enhetsregisteret/oppdateringer/enheter"


@dataclass(frozen=True)
class UnitUpsert:
    """A unit as the API answered it now, with its typed columns."""

    columns: Typed
    record: dict[str, Any]


@dataclass(frozen=True)
class PageWrite:
    """What one page of the feed changes, written at once with the feed's new position."""

    upserts: Sequence[UnitUpsert]
    deleted: Sequence[str]
    removed: Sequence[str]
    position: int


_UPSERT_UNIT = """
INSERT INTO companies AS c (orgnr, navn, organisasjonsform, naeringskode1, antall_ansatte, hjemmeside, postnummer,
                            kommunenummer, landkode, stiftelsesdato, batch, record, record_hash)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, md5(%s))
ON CONFLICT (orgnr) DO UPDATE SET
    navn = EXCLUDED.navn, organisasjonsform = EXCLUDED.organisasjonsform, naeringskode1 = EXCLUDED.naeringskode1,
    antall_ansatte = EXCLUDED.antall_ansatte, hjemmeside = EXCLUDED.hjemmeside, postnummer = EXCLUDED.postnummer,
    kommunenummer = EXCLUDED.kommunenummer, landkode = EXCLUDED.landkode, stiftelsesdato = EXCLUDED.stiftelsesdato,
    record = EXCLUDED.record, record_hash = EXCLUDED.record_hash, deleted_at = NULL, updated_at = now()
WHERE c.deleted_at IS NOT NULL OR register_fields(c.record) IS DISTINCT FROM register_fields(EXCLUDED.record)
RETURNING batch
"""
_MARK_DELETED = """
UPDATE companies SET deleted_at = now(), updated_at = now()
WHERE orgnr = ANY(%s) AND deleted_at IS NULL
RETURNING batch
"""
_BATCHES_OF = "SELECT DISTINCT batch FROM companies WHERE orgnr = ANY(%s) AND record_hash <> 'purged'"
_SET_POSITION = """
INSERT INTO sync_cursors (name, position) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()
"""
_RECORD_BATCHES = """
INSERT INTO batch_changes (batch) SELECT DISTINCT unnest(%s::int[])
ON CONFLICT (batch) DO UPDATE SET version = nextval('batch_changes_version'), changed_at = now()
"""
_ACKNOWLEDGE = """
DELETE FROM batch_changes b USING unnest(%s::int[], %s::bigint[]) AS r(batch, version)
WHERE b.batch = r.batch AND b.version = r.version
"""


def feed_position(postgres: PostgresResource, holder: object = None) -> int | None:
    """The id of the last update applied, or None before the first sync."""
    with postgres.connection(holder) as conn:
        row = conn.execute("SELECT position FROM sync_cursors WHERE name = %s", [FEED]).fetchone()
    return int(row[0]) if row else None


def last_import(postgres: PostgresResource, holder: object = None) -> dict[str, Any] | None:
    """The last successful import: when it started, and the dump's build time when it came from a URL."""
    with postgres.connection(holder) as conn:
        row = conn.execute(
            "SELECT i.started_at, s.value FROM imports i LEFT JOIN pipeline_settings s ON s.key = 'dump_built_at' "
            "WHERE i.status = 'succeeded' ORDER BY i.id DESC LIMIT 1"
        ).fetchone()
    return {"started_at": row[0], "dump_built_at": row[1]} if row else None


def write_page(postgres: PostgresResource, page: PageWrite, batches: int, holder: object = None) -> list[int]:
    """Apply one page and move the cursor past it, in one transaction; returns the batches that changed.

    Applying the same page again changes nothing: a unit is rewritten only when the register's
    fields differ, a deletion only marks units not yet deleted, and a purge of a purged unit is a no-op.
    """
    changed: set[int] = set()
    with postgres.transaction(holder) as conn:
        with conn.cursor() as cur:
            for unit in page.upserts:
                text = record_text(unit.record)
                cur.execute(_UPSERT_UNIT, [*unit.columns, batch_of(unit.columns.orgnr, batches), Jsonb(unit.record), text])
                changed.update(row[0] for row in cur.fetchall())
        if page.deleted:
            changed.update(row[0] for row in conn.execute(_MARK_DELETED, [list(page.deleted)]).fetchall())
        if page.removed:
            changed.update(row[0] for row in conn.execute(_BATCHES_OF, [list(page.removed)]).fetchall())
            purge_units(conn, page.removed, keep_source=None)
        record_changed_batches(conn, changed)
        conn.execute(_SET_POSITION, [FEED, page.position])
    return sorted(changed)


def record_text(record: dict[str, Any]) -> str:
    """The text the unit's hash is taken over (compact JSON, as the API sent it)."""
    return orjson.dumps(record).decode("utf-8")


def record_changed_batches(conn: psycopg.Connection, batches: Iterable[int]) -> None:
    """Put batches in the outbox, inside the caller's transaction."""
    batches = sorted(set(batches))
    if batches:
        conn.execute(_RECORD_BATCHES, [batches])


def pending_batches(postgres: PostgresResource, holder: object = None) -> dict[int, int]:
    """Changed batches not yet reported to Dagster: batch -> version."""
    with postgres.connection(holder) as conn:
        return dict(conn.execute("SELECT batch, version FROM batch_changes ORDER BY batch").fetchall())


def acknowledge(postgres: PostgresResource, reported: dict[int, int], holder: object = None) -> int:
    """Remove batches whose report is stored, unless they changed again since (a newer version)."""
    if not reported:
        return 0
    with postgres.transaction(holder) as conn:
        batches, versions = zip(*sorted(reported.items()))
        return conn.execute(_ACKNOWLEDGE, [list(batches), list(versions)]).rowcount

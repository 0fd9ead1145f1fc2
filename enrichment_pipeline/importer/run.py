"""Import one dump file: stream, validate, COPY into staging, then one upsert transaction.

Everything happens in a single transaction, so a file that turns out not to be a dump (truncated,
HTML, wrong shape) rolls back and leaves `companies` exactly as it was. The only I/O while the
connection is held is reading a local file: a URL is downloaded first (importer.source).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.errors import BadDumpError
from enrichment_pipeline.importer import source as dump_source
from enrichment_pipeline.importer.records import RawUnit, iter_csv_units, iter_json_units
from enrichment_pipeline.importer.validate import batch_of, typed
from enrichment_pipeline.registers import orgnr as orgnr_rules
from enrichment_pipeline.store import changes
from enrichment_pipeline.store import companies as store

log = logging.getLogger(__name__)

DEFAULT_BATCHES = 1200
PROGRESS_EVERY = 100_000

# A unit whose record is rejected is still in the register: stage its stored version, unchanged,
# so the upsert leaves it alone and it is not marked deleted as if the dump lacked it.
_KEEP_PREVIOUS = """
INSERT INTO stage_companies (orgnr, navn, organisasjonsform, naeringskode1, antall_ansatte, hjemmeside, postnummer,
                             kommunenummer, landkode, stiftelsesdato, batch, record, record_hash, position)
SELECT orgnr, navn, organisasjonsform, naeringskode1, antall_ansatte, hjemmeside, postnummer,
       kommunenummer, landkode, stiftelsesdato, batch, record::text, record_hash, NULL
FROM companies
WHERE orgnr = ANY(%s) AND deleted_at IS NULL
"""


@dataclass
class ImportResult:
    import_id: int
    format: str
    batches: int
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    marked_deleted: int = 0
    kept_previous: int = 0
    """Known companies whose record in this dump was rejected: they keep their previous version."""
    rejected: Counter[str] = field(default_factory=Counter)
    changed_batches: list[int] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def accepted(self) -> int:
        return self.rows_read - sum(self.rejected.values())


def _units(path: Path) -> tuple[str, Callable[[], Iterator[RawUnit]]]:
    with dump_source.open_decompressed(path) as stream:
        fmt = dump_source.detect_format(stream.peek(4096)[:4096], path.name)

    def units() -> Iterator[RawUnit]:
        with dump_source.open_decompressed(path) as stream:
            reader = iter_json_units if fmt == "json" else iter_csv_units
            yield from reader(stream, path.name)

    return fmt, units


def _stage(
    conn: psycopg.Connection, units: Iterator[RawUnit], fmt: str, batches: int, result: ImportResult,
    progress: Callable[[int], None] | None, direct: bool,
) -> tuple[list[tuple[int, str | None, str, str]], list[str]]:
    """COPY valid units into staging (or, `direct`, straight into an empty companies table).

    Returns the rejects (position, orgnr, reason, raw) and the valid numbers of rejected units that
    no accepted unit carries. The server parses what we send while we read on: on two cores the
    import is as fast as the slower of the two, not their sum.
    """
    rejects: list[tuple[int, str | None, str, str]] = []
    rejected_numbers: set[str] = set()
    seen: set[int] = set()
    touched: set[int] = set()
    last_column = result.import_id if direct else None
    with conn.cursor().copy(store.DIRECT_COPY if direct else store.STAGE_COPY) as copy:
        for unit in units:
            result.rows_read += 1
            if progress is not None and result.rows_read % PROGRESS_EVERY == 0:
                progress(result.rows_read)
            if unit.record is None:
                rejects.append((unit.position, None, unit.reason or "unparseable", unit.text))
                if unit.number is not None and orgnr_rules.is_valid(unit.number):
                    rejected_numbers.add(unit.number)
                continue
            columns, reason = typed(unit.record)
            if columns is None:
                number = unit.record.get("organisasjonsnummer")
                rejects.append((unit.position, number if isinstance(number, str) else None, reason or "invalid", unit.text))
                if orgnr_rules.is_valid(number):
                    rejected_numbers.add(number)
                continue
            key = int(columns.orgnr)
            if key in seen:
                rejects.append((unit.position, columns.orgnr, "duplicate_orgnr", unit.text))
                continue
            seen.add(key)
            text = unit.text if fmt == "json" else json.dumps(unit.record, ensure_ascii=False, separators=(",", ":"))
            digest = hashlib.md5(text.encode("utf-8")).hexdigest()
            batch = batch_of(columns.orgnr, batches)
            touched.add(batch)
            copy.write_row((*columns, batch, text, digest, unit.position if last_column is None else last_column))
    result.changed_batches = sorted(touched)
    return rejects, sorted(n for n in rejected_numbers if int(n) not in seen)


def import_file(
    postgres: PostgresResource,
    path: Path,
    *,
    source_label: str,
    etag: str | None = None,
    built_at: str | None = None,
    batches: int | None = None,
    max_delete_share: float = 0.5,
    holder: object = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import `path` (JSON or CSV, gzip or not) into `companies`.

    `built_at` (ISO 8601, from the dump's Last-Modified) is where the change feed starts after a
    first import; the batches that changed go into the outbox in the import's own transaction.
    """
    started = time.monotonic()
    batch_count = store.batch_count(postgres, batches or DEFAULT_BATCHES, holder)
    import_id = store.start_import(postgres, source_label, etag, holder)
    try:
        fmt, units = _units(path)
        result = ImportResult(import_id=import_id, format=fmt, batches=batch_count)
        with postgres.transaction(holder) as conn:
            conn.execute("SET LOCAL synchronous_commit = off")  # one flush at commit is enough
            direct = store.companies_empty(conn)
            if not direct:
                store.create_staging(conn)
            rejects, unreadable = _stage(conn, units(), fmt, batch_count, result, progress, direct)
            if result.accepted == 0:
                raise BadDumpError(f"{path.name} holds no valid units ({result.rows_read} read, all rejected)")
            store.write_rejects(conn, import_id, rejects)
            result.rejected = Counter(reason for _, _, reason, _ in rejects)
            if direct:
                result.inserted = result.accepted
            else:
                result.kept_previous = conn.execute(_KEEP_PREVIOUS, [unreadable]).rowcount if unreadable else 0
                result.marked_deleted, deleted_batches = store.mark_absent_deleted(conn, max_delete_share)
                result.inserted, result.updated, upserted_batches = store.upsert_from_staging(conn, import_id)
                result.changed_batches = sorted(set(upserted_batches) | set(deleted_batches))
            result.unchanged = result.accepted - result.inserted - result.updated
            store.finish_import(conn, import_id, fmt, result.rows_read, result.inserted + result.updated,
                                sum(result.rejected.values()), result.marked_deleted)
            changes.record_changed_batches(conn, result.changed_batches)
            if etag:
                store.put_setting(conn, "dump_etag", etag)
            if built_at:
                store.put_setting(conn, "dump_built_at", built_at)
            else:  # a local file says nothing of when it was built
                store.delete_setting(conn, "dump_built_at")
    except Exception as exc:
        store.fail_import(postgres, import_id, str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__, holder)
        raise
    result.wall_s = time.monotonic() - started
    return result

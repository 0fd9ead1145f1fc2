"""SQL for the lookups: read a batch in one short query, write its outcomes in one short transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from enrichment_pipeline.db.resource import PostgresResource


@dataclass(frozen=True)
class Company:
    """What a lookup needs to know about one company: read once, before any network I/O."""

    orgnr: str
    navn: str
    organisasjonsform: str | None
    hjemmeside: str | None
    postnummer: str | None
    kommunenummer: str | None
    landkode: str | None
    address_lines: tuple[str, ...]
    deleted: bool


@dataclass(frozen=True)
class Outcome:
    """One company's result of one lookup, as stored."""

    orgnr: str
    outcome: str
    http_status: int | None = None
    error: str | None = None
    data: Any = None
    attempts: int = 0
    latency_s: float = 0.0


_READ_BATCH = """
SELECT orgnr, navn, organisasjonsform, hjemmeside, postnummer, kommunenummer, landkode,
       coalesce(record #> '{forretningsadresse,adresse}', record #> '{postadresse,adresse}', '[]'::jsonb),
       deleted_at IS NOT NULL
FROM companies
WHERE batch = ANY(%s)
ORDER BY orgnr
"""

_UPSERT = """
INSERT INTO enrichments (orgnr, source, outcome, http_status, error, data, attempts, latency_ms, fetched_at, run_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), %s)
ON CONFLICT (orgnr, source) DO UPDATE SET
    outcome = EXCLUDED.outcome, http_status = EXCLUDED.http_status, error = EXCLUDED.error,
    data = EXCLUDED.data, attempts = EXCLUDED.attempts, latency_ms = EXCLUDED.latency_ms,
    fetched_at = EXCLUDED.fetched_at, run_id = EXCLUDED.run_id
"""

# 410 Gone: the unit was removed on legal grounds; copies are asked to delete it too. Only a
# tombstone stays: the number, the outcome, no name and no data.
_PURGE_ENRICHMENTS = "DELETE FROM enrichments WHERE orgnr = ANY(%s) AND source <> %s"
_PURGE_PROFILES = "DELETE FROM company_profiles WHERE orgnr = ANY(%s)"
_PURGE_COMPANIES = """
UPDATE companies SET navn = '(fjernet)', record = jsonb_build_object('organisasjonsnummer', orgnr),
    hjemmeside = NULL, postnummer = NULL, kommunenummer = NULL, landkode = NULL, naeringskode1 = NULL,
    antall_ansatte = NULL, stiftelsesdato = NULL, record_hash = 'purged',
    deleted_at = coalesce(deleted_at, now()), updated_at = now()
WHERE orgnr = ANY(%s)
"""


def read_batch(postgres: PostgresResource, batches: Sequence[int], holder: object = None) -> list[Company]:
    with postgres.connection(holder) as conn:
        rows = conn.execute(_READ_BATCH, [list(batches)]).fetchall()
    return [
        Company(orgnr, navn, form, home, postnummer, kommune, land,
                tuple(line for line in (lines or []) if isinstance(line, str) and line.strip()), deleted)
        for orgnr, navn, form, home, postnummer, kommune, land, lines, deleted in rows
    ]


def write_outcomes(
    postgres: PostgresResource, source: str, outcomes: Sequence[Outcome], run_id: str | None, holder: object = None
) -> None:
    """All of a step's results in one transaction: idempotent upserts keyed by (orgnr, source)."""
    rows = [
        (o.orgnr, source, o.outcome, o.http_status, o.error, Jsonb(o.data) if o.data is not None else None,
         o.attempts, round(o.latency_s * 1000, 1), run_id)
        for o in outcomes
    ]
    gone = [o.orgnr for o in outcomes if o.outcome == "gone"]
    with postgres.transaction(holder) as conn:
        with conn.cursor() as cur:
            cur.executemany(_UPSERT, rows)
        if gone:
            conn.execute(_PURGE_ENRICHMENTS, [gone, source])
            conn.execute(_PURGE_PROFILES, [gone])
            conn.execute(_PURGE_COMPANIES, [gone])

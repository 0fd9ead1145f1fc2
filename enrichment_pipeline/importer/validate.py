"""Validate one unit and derive the typed columns queries need; the same for JSON and CSV."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any, NamedTuple

from enrichment_pipeline.registers import orgnr as orgnr_rules

MAX_NAVN_CHARS = 2000


class Typed(NamedTuple):
    orgnr: str
    navn: str
    organisasjonsform: str | None
    naeringskode1: str | None
    antall_ansatte: int | None
    hjemmeside: str | None
    postnummer: str | None
    kommunenummer: str | None
    landkode: str | None
    stiftelsesdato: dt.date | None


def batch_of(orgnr: str, batches: int) -> int:
    """A company's batch: a stable hash of its number, so it never moves when others come or go."""
    return zlib.crc32(orgnr.encode("ascii")) % batches


def partition_key(batch: int) -> str:
    return f"b{batch:04d}"


def _code(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if isinstance(value, dict):
        code = value.get("kode")
        return code if isinstance(code, str) and code else None
    return None


def _address(record: dict[str, Any]) -> dict[str, Any]:
    for key in ("forretningsadresse", "postadresse"):
        value = record.get(key)
        if isinstance(value, dict):
            return value
    return {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def typed(record: dict[str, Any]) -> tuple[Typed | None, str | None]:
    """(typed columns, None) for a valid unit, or (None, reason) for a rejected one."""
    number = record.get("organisasjonsnummer")
    reason = orgnr_rules.invalid_reason(number)
    if reason is not None:
        return None, reason
    navn = record.get("navn")
    if not isinstance(navn, str) or not navn.strip():
        return None, "missing_navn"
    if len(navn) > MAX_NAVN_CHARS:
        return None, "navn_too_long"
    employees = record.get("antallAnsatte")
    if employees is not None and (not isinstance(employees, int) or isinstance(employees, bool) or employees < 0):
        return None, "invalid_antallAnsatte"
    founded: dt.date | None = None
    if (raw_date := record.get("stiftelsesdato")) is not None:
        try:
            founded = dt.date.fromisoformat(raw_date) if isinstance(raw_date, str) else None
        except ValueError:
            founded = None
        if founded is None:
            return None, "invalid_stiftelsesdato"
    address = _address(record)
    return Typed(
        orgnr=number,
        navn=navn,
        organisasjonsform=_code(record, "organisasjonsform"),
        naeringskode1=_code(record, "naeringskode1"),
        antall_ansatte=employees,
        hjemmeside=_text(record.get("hjemmeside")),
        postnummer=_text(address.get("postnummer")),
        kommunenummer=_text(address.get("kommunenummer")),
        landkode=_text(address.get("landkode")),
        stiftelsesdato=founded,
    ), None

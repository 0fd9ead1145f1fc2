"""Stream units out of a dump, one at a time, never holding the file or all records in memory.

JSON: the register writes one pretty-printed array (Jackson style), where a record's closing
brace is the only `}` at column 0. Splitting there is fast and lets one broken record be rejected
while the rest go on. Any other layout falls back to `JSONDecoder.raw_decode`.

CSV: columns are mapped by header name (never position), unknown columns are kept as they are,
dotted names become nested objects, `/n` separates address lines.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from enrichment_pipeline.errors import BadDumpError

_CHUNK_CHARS = 1 << 20
_BOUNDARY = "\n}, {"
# Jackson's layout: the first record opens at column 0 and its keys are indented by two spaces;
# its closing brace is then the only "}" at column 0, followed by ", {" or " ]".
_JACKSON_FIRST = re.compile(r'\{\n  "[^\n]*\n(?:  [^\n]*\n)*\}(?:, \{| \])')
_SURROGATE = re.compile("[\udc80-\udcff]")
MAX_RECORD_CHARS = 1_000_000
_NUMBER_IN_TEXT = re.compile(r'"organisasjonsnummer"\s*:\s*"([0-9]{9})"')
_NUMBER_SEARCH_CHARS = 10_000  # the register writes the number first; never scan a giant record


@dataclass(frozen=True)
class RawUnit:
    """One unit as read: `record` parsed, or `reason` why it could not be."""

    position: int
    text: str
    record: dict[str, Any] | None
    reason: str | None = None
    number: str | None = None
    """For a unit that could not be parsed: the organisation number its text still shows, if any,
    so a known company is not taken for deleted because this copy of it is unreadable."""


def _text_stream(binary: io.BufferedReader) -> io.TextIOWrapper:
    # surrogateescape keeps undecodable bytes visible, so a unit in the wrong encoding is rejected alone;
    # utf-8-sig drops a byte-order mark (spreadsheet tools write one) instead of gluing it to the first name.
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _number_in(text: str) -> str | None:
    match = _NUMBER_IN_TEXT.search(text, 0, _NUMBER_SEARCH_CHARS)
    return match.group(1) if match else None


def _has_bad_bytes(text: str) -> bool:
    """True when undecodable bytes were smuggled in as surrogates (cheaper than a regex scan)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parse(position: int, text: str, has_bad_bytes: bool) -> RawUnit:
    if len(text) > MAX_RECORD_CHARS:
        return RawUnit(position, text[:2000], None, "record_too_large", _number_in(text))
    if has_bad_bytes and _SURROGATE.search(text):
        readable = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return RawUnit(position, readable, None, "invalid_utf8", _number_in(text))
    if "\\u0000" in text:  # valid JSON, but PostgreSQL's jsonb refuses NUL characters
        return RawUnit(position, text.replace("\\u0000", ""), None, "nul_character", _number_in(text))
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return RawUnit(position, text, None, "unparseable", _number_in(text))
    if not isinstance(record, dict):
        return RawUnit(position, text, None, "not_an_object")
    return RawUnit(position, text, record)


def iter_json_units(binary: io.BufferedReader, name: str) -> Iterator[RawUnit]:
    text = _text_stream(binary)
    buf = text.read(_CHUNK_CHARS)
    start = buf.find("[")
    if start < 0 or buf[:start].strip(" \t\r\n\ufeff"):
        raise BadDumpError(f"{name} does not start with a JSON array")
    buf = buf[start + 1 :].lstrip()
    if buf.startswith("]"):
        return
    if not buf.startswith("{"):
        raise BadDumpError(f"{name} is a JSON array, but not of unit objects")
    if _JACKSON_FIRST.match(buf):
        yield from _iter_jackson(text, buf, name)
    else:
        yield from _iter_compact(text, buf, name)


def _iter_jackson(text: io.TextIOWrapper, buf: str, name: str) -> Iterator[RawUnit]:
    position = 0
    while True:
        bad = _has_bad_bytes(buf)
        pos = 0
        while (cut := buf.find(_BOUNDARY, pos)) >= 0:
            yield _parse(position, buf[pos : cut + 2], bad)
            position += 1
            pos = cut + 4  # at the next record's "{"
        chunk = text.read(_CHUNK_CHARS)
        if not chunk:
            tail = buf[pos:].rstrip()
            if not tail.endswith("]"):
                raise BadDumpError(f"{name} ends before the JSON array is closed (truncated after {position} units)")
            last = tail[:-1].rstrip()
            if last:
                yield _parse(position, last, bad)
            return
        buf = buf[pos:] + chunk


def _iter_compact(text: io.TextIOWrapper, buf: str, name: str) -> Iterator[RawUnit]:
    import json

    decoder = json.JSONDecoder()
    position, pos, eof = 0, 0, False
    while True:
        while pos < len(buf) and buf[pos] in " \t\r\n,":
            pos += 1
        if pos < len(buf) and buf[pos] == "]":
            return
        try:
            record, end = decoder.raw_decode(buf, pos)
        except ValueError:
            if eof:
                raise BadDumpError(f"{name} has malformed JSON after {position} units") from None
            chunk = text.read(_CHUNK_CHARS)
            eof = not chunk
            buf, pos = buf[pos:] + chunk, 0
            if eof and not buf.strip():
                raise BadDumpError(f"{name} ends before the JSON array is closed (truncated after {position} units)")
            continue
        raw = buf[pos:end]
        yield RawUnit(position, raw, record) if isinstance(record, dict) else RawUnit(position, raw, None, "not_an_object")
        position += 1
        pos = end


# -- CSV -------------------------------------------------------------------------------------
# The CSV dump spells a few names differently from the JSON records; map them to the JSON names.
_CSV_RENAMES = {
    "registreringsdatoenhetsregisteret": "registreringsdatoEnhetsregisteret",
    "registrertimvaregisteret": "registrertIMvaregisteret",
}
_LIST_KEYS = {"adresse", "vedtektsfestetFormaal", "aktivitet", "formaal"}
_INT_KEYS = {"antallAnsatte"}
_LINE_JOIN = "/n"


def _canonical(column: str) -> list[str]:
    return [_CSV_RENAMES.get(part.lower(), part) for part in column.strip().split(".")]


def _csv_value(key: str, value: str) -> Any:
    if key in _LIST_KEYS:
        return value.split(_LINE_JOIN)
    if value in ("true", "false"):
        return value == "true"
    if key in _INT_KEYS and value.lstrip("-").isdigit():
        return int(value)
    return value


def csv_record(paths: list[list[str]], row: list[str]) -> dict[str, Any]:
    """A nested record from one CSV row: empty cells are omitted, as absent values are in JSON."""
    record: dict[str, Any] = {}
    for path, value in zip(paths, row):
        if value == "":
            continue
        target = record
        for part in path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                break
        else:
            target[path[-1]] = _csv_value(path[-1], value)
    return record


def iter_csv_units(binary: io.BufferedReader, name: str) -> Iterator[RawUnit]:
    csv.field_size_limit(MAX_RECORD_CHARS * 10)
    text = _text_stream(binary)
    reader = csv.reader(text)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise BadDumpError(f"{name} has no CSV header") from None
    paths = [_canonical(column) for column in header]
    number_at = next((i for i, path in enumerate(paths) if path == ["organisasjonsnummer"]), None)
    position = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader gives up on a field beyond its limit (10x MAX_RECORD_CHARS): too large, like a long row.
            reason = "record_too_large" if "field larger than field limit" in str(exc) else "unparseable"
            yield RawUnit(position, f"line {reader.line_num}: {exc}", None, reason)
            position += 1
            continue
        raw = ",".join(row)
        number = row[number_at] if number_at is not None and number_at < len(row) else None
        if len(row) != len(paths):
            yield RawUnit(position, raw[:2000], None, "unparseable", number)
        elif len(raw) > MAX_RECORD_CHARS:
            yield RawUnit(position, raw[:2000], None, "record_too_large", number)
        elif "\x00" in raw:
            yield RawUnit(position, raw.replace("\x00", ""), None, "nul_character", number)
        elif _SURROGATE.search(raw):
            yield RawUnit(position, raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), None, "invalid_utf8",
                          number)
        else:
            yield RawUnit(position, raw, csv_record(paths, row))
        position += 1

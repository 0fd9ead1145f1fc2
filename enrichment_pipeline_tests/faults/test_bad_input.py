"""Bad input: corrupt dumps, invalid organisation numbers, wrong encodings, giant fields, home pages on
private addresses.

Fault: a dump (JSON or CSV) holding the register's 3,000 generated units plus bad ones, or a whole
file in the wrong encoding or with a corrupt gzip stream; `hjemmeside` values that point at
loopback, link-local (cloud metadata) or private addresses.

Outcome: every bad unit is rejected with its reason (exact counts per reason, stored in
`rejected_units`); every good unit is imported; data already in the database is unchanged, and a
known company whose new record is unreadable keeps its previous version instead of being marked
deleted. A file that is not a dump at all fails with one line and changes nothing. A home page on a
private address is refused with a reason, without a request, and no other company's outcome moves.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.companies.partitions import COMPANY_BATCHES, batch_keys
from enrichment_pipeline.defs.lookups.website_profile import website_profile
from enrichment_pipeline.errors import BadDumpError
from enrichment_pipeline.importer.run import ImportResult, import_file
from enrichment_pipeline.importer.validate import batch_of
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.registers.orgnr import check_digit, from_prefix
from enrichment_pipeline_tests.conftest import StartService, make_resource
from enrichment_pipeline_tests.dumps import jackson, read_dump

TEN_MB = 10 * 1024 * 1024
ONE_MB = 1024 * 1024


@pytest.fixture(scope="module")
def records(generated: Path) -> list[dict[str, Any]]:
    return read_dump(generated / "enheter.json.gz")


def _valid(n: int) -> str:
    """A valid organisation number that the generated register does not use."""
    prefix = 12_000_000 + n
    while (number := from_prefix(prefix)) is None:
        prefix += 1
    return number


def _never_issued() -> str:
    """A nine-digit number whose prefix has no valid check digit (the rule gives 10)."""
    prefix = 12_500_000
    while check_digit(str(prefix)) is not None:
        prefix += 1
    return f"{prefix}0"


def _write_json(path: Path, parts: list[str], *, encoding: str = "utf-8", bom: bytes = b"") -> Path:
    """A gzip dump in the register's Jackson layout from already serialised records."""
    with gzip.open(path, "wb") as out:
        out.write(bom + ("[ " + ", ".join(parts) + " ]").encode(encoding))
    return path


def _csv_rows(generated: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(generated / "enheter.csv.gz", "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, list(reader)


def _write_csv(path: Path, header: list[str], rows: list[list[str]], *, encoding: str = "utf-8", bom: bytes = b"") -> Path:
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with gzip.open(path, "wb") as out:
        out.write(bom + text.getvalue().encode(encoding))
    return path


def _fingerprint(postgres: PostgresResource) -> tuple[Any, ...]:
    """Every company's number, record, deletion mark and update time: any change shows."""
    with postgres.connection() as conn:
        return conn.execute(
            "SELECT count(*), count(deleted_at), md5(string_agg(orgnr || record_hash || coalesce(deleted_at::text, '') "
            "|| updated_at::text, ',' ORDER BY orgnr)) FROM companies").fetchone()


def _rejected(postgres: PostgresResource) -> list[tuple[str, str | None]]:
    with postgres.connection() as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT reason, orgnr FROM rejected_units WHERE import_id = (SELECT max(id) FROM imports) ORDER BY position"
        ).fetchall()]


def _counts(result: ImportResult) -> tuple[int, int, int, int, int]:
    return result.rows_read, result.inserted, result.updated, result.unchanged, result.marked_deleted


def _bad_numbers() -> list[tuple[Any, str, str | None]]:
    """(organisasjonsnummer value, expected reason, expected stored orgnr) for each kind of bad number."""
    good = _valid(1)
    wrong_digit = good[:8] + str((int(good[8]) + 1) % 10)
    never = _never_issued()
    return [
        (int(good), "orgnr_not_a_string", None),
        (good[:8], "orgnr_not_nine_digits", good[:8]),
        (good + "3", "orgnr_not_nine_digits", good + "3"),
        (good[:8] + "X", "orgnr_not_nine_digits", good[:8] + "X"),
        (" " + good, "orgnr_not_nine_digits", " " + good),
        ("".join(chr(0xFF10 + int(d)) for d in good), "orgnr_not_nine_digits", "".join(chr(0xFF10 + int(d)) for d in good)),
        (wrong_digit, "orgnr_bad_check_digit", wrong_digit),
        (never, "orgnr_bad_check_digit", never),
        ("", "missing_orgnr", ""),
        (None, "missing_orgnr", None),
    ]


def test_invalid_organisation_numbers_in_a_json_dump_are_rejected_each_with_its_reason(
    postgres: PostgresResource, generated: Path, records: list[dict[str, Any]], tmp_path: Path,
) -> None:
    import_file(postgres, generated / "enheter.json.gz", source_label="before", batches=6)
    before = _fingerprint(postgres)
    bad = _bad_numbers()
    bad_parts = []
    for i, (number, _, _) in enumerate(bad):
        unit = {k: v for k, v in records[0].items() if k != "organisasjonsnummer"}
        if number is not None:
            unit = {"organisasjonsnummer": number, **unit}
        unit["navn"] = f"Feil nummer {i} AS"
        bad_parts.append(jackson(unit))
    parts = [jackson(r) for r in records]
    dump = _write_json(tmp_path / "numbers.json.gz", parts[:1500] + bad_parts + parts[1500:])

    result = import_file(postgres, dump, source_label="numbers")

    assert _counts(result) == (3000 + len(bad), 0, 0, 3000, 0)
    assert dict(result.rejected) == dict(Counter(reason for _, reason, _ in bad))
    assert _rejected(postgres) == [(reason, stored) for _, reason, stored in bad]
    assert _fingerprint(postgres) == before


def test_invalid_organisation_numbers_in_a_csv_dump_are_rejected_each_with_its_reason(
    postgres: PostgresResource, generated: Path, tmp_path: Path,
) -> None:
    import_file(postgres, generated / "enheter.csv.gz", source_label="before", batches=6)
    before = _fingerprint(postgres)
    header, rows = _csv_rows(generated)
    column = header.index("organisasjonsnummer")
    bad = [(n, reason, stored) for n, reason, stored in _bad_numbers() if isinstance(n, str) or n is None]
    bad_rows = []
    for number, _, _ in bad:
        row = list(rows[0])
        row[column] = "" if number is None else number
        bad_rows.append(row)
    dump = _write_csv(tmp_path / "numbers.csv.gz", header, rows[:1500] + bad_rows + rows[1500:])

    result = import_file(postgres, dump, source_label="numbers")

    # A CSV cell cannot tell an empty number from an absent one, and every cell is a string.
    expected = [(reason, stored if stored else None) for _, reason, stored in bad]
    assert _counts(result) == (3000 + len(bad), 0, 0, 3000, 0)
    assert dict(result.rejected) == dict(Counter(reason for reason, _ in expected))
    assert _rejected(postgres) == expected
    assert _fingerprint(postgres) == before


def test_a_whole_latin1_dump_imports_its_ascii_units_and_rejects_every_other_as_invalid_utf8(
    postgres: PostgresResource, records: list[dict[str, Any]], tmp_path: Path,
) -> None:
    parts = [jackson(r) for r in records]
    ascii_only = sum(1 for p in parts if p.isascii())
    dump = _write_json(tmp_path / "latin1.json.gz", parts, encoding="latin-1")

    result = import_file(postgres, dump, source_label="latin1", batches=6)

    assert 0 < ascii_only < 3000
    assert _counts(result) == (3000, ascii_only, 0, 0, 0)
    assert dict(result.rejected) == {"invalid_utf8": 3000 - ascii_only}
    with postgres.connection() as conn:
        stored = conn.execute("SELECT raw FROM rejected_units WHERE reason = 'invalid_utf8' LIMIT 1").fetchone()[0]
    assert "\ufffd" in stored  # kept readable, the undecodable bytes marked


def test_latin1_units_in_a_utf8_dump_are_rejected_alone_and_existing_data_is_unchanged(
    postgres: PostgresResource, generated: Path, records: list[dict[str, Any]], tmp_path: Path,
) -> None:
    import_file(postgres, generated / "enheter.json.gz", source_label="before", batches=6)
    before = _fingerprint(postgres)
    strangers = [{**records[0], "organisasjonsnummer": _valid(10 + i), "navn": f"Bjørnøya Fiskeriselskap {i} AS"}
                 for i in range(3)]
    body = b", ".join([jackson(r).encode("utf-8") for r in records[:1000]]
                      + [jackson(s).encode("latin-1") for s in strangers]
                      + [jackson(r).encode("utf-8") for r in records[1000:]])
    dump = tmp_path / "mixed.json.gz"
    dump.write_bytes(gzip.compress(b"[ " + body + b" ]"))

    result = import_file(postgres, dump, source_label="mixed")

    assert _counts(result) == (3003, 0, 0, 3000, 0)
    assert _rejected(postgres) == [("invalid_utf8", None)] * 3
    assert _fingerprint(postgres) == before


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_utf8_byte_order_mark_is_ignored(
    postgres: PostgresResource, generated: Path, records: list[dict[str, Any]], tmp_path: Path, fmt: str,
) -> None:
    if fmt == "json":
        dump = _write_json(tmp_path / "bom.json.gz", [jackson(r) for r in records], bom=b"\xef\xbb\xbf")
    else:
        header, rows = _csv_rows(generated)
        dump = _write_csv(tmp_path / "bom.csv.gz", header, rows, bom=b"\xef\xbb\xbf")

    result = import_file(postgres, dump, source_label="bom", batches=6)

    assert (result.format, *_counts(result)) == (fmt, 3000, 3000, 0, 0, 0)
    assert not result.rejected


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_a_utf16_or_utf32_file_fails_with_one_line_naming_the_encoding_and_changes_nothing(
    postgres: PostgresResource, generated: Path, records: list[dict[str, Any]], tmp_path: Path, fmt: str,
    encoding: str,
) -> None:
    import_file(postgres, generated / "enheter.json.gz", source_label="before", batches=6)
    before = _fingerprint(postgres)
    if fmt == "json":
        dump = _write_json(tmp_path / "wide.json.gz", [jackson(r) for r in records[:50]], encoding=encoding)
    else:
        header, rows = _csv_rows(generated)
        dump = _write_csv(tmp_path / "wide.csv.gz", header, rows[:50], encoding=encoding)

    with pytest.raises(BadDumpError, match="is UTF-(16|32), not UTF-8") as caught:
        import_file(postgres, dump, source_label="wide")

    assert "\n" not in str(caught.value)
    assert _fingerprint(postgres) == before
    assert _rejected(postgres) == []


def test_a_corrupt_gzip_stream_fails_with_one_line_and_changes_nothing(
    postgres: PostgresResource, generated: Path, tmp_path: Path,
) -> None:
    import_file(postgres, generated / "enheter.json.gz", source_label="before", batches=6)
    before = _fingerprint(postgres)
    data = bytearray((generated / "enheter.json.gz").read_bytes())
    for offset in range(len(data) // 2, len(data) // 2 + 64):  # a burst of flipped bits mid-file
        data[offset] ^= 0x5A
    corrupt = tmp_path / "corrupt.json.gz"
    corrupt.write_bytes(bytes(data))

    with pytest.raises(BadDumpError, match="not a valid gzip file|is truncated") as caught:
        import_file(postgres, corrupt, source_label="corrupt")

    assert "\n" not in str(caught.value)
    assert _fingerprint(postgres) == before
    with postgres.connection() as conn:
        assert conn.execute("SELECT status FROM imports ORDER BY id DESC LIMIT 1").fetchone()[0] == "failed"
        assert conn.execute("SELECT count(*) FROM rejected_units").fetchone()[0] == 0


def test_a_10_mb_navn_and_a_1_mb_line_are_rejected_alone_in_a_json_dump(
    postgres: PostgresResource, generated: Path, records: list[dict[str, Any]], tmp_path: Path,
) -> None:
    import_file(postgres, generated / "enheter.json.gz", source_label="before", batches=6)
    before = _fingerprint(postgres)
    giant = {**records[0], "organisasjonsnummer": _valid(20), "navn": "Stort navn AS " + "x" * TEN_MB}
    long_line = {**records[0], "organisasjonsnummer": _valid(21),
                 "vedtektsfestetFormaal": ["Formål " + "y" * ONE_MB]}
    parts = [jackson(r) for r in records]
    dump = _write_json(tmp_path / "giant.json.gz", parts[:10] + [jackson(giant)] + parts[10:20]
                       + [jackson(long_line)] + parts[20:])

    result = import_file(postgres, dump, source_label="giant")

    assert _counts(result) == (3002, 0, 0, 3000, 0)
    assert dict(result.rejected) == {"record_too_large": 2}
    with postgres.connection() as conn:
        sizes = conn.execute("SELECT length(raw) FROM rejected_units ORDER BY position").fetchall()
    assert [s for (s,) in sizes] == [2000, 2000]  # the reject keeps a readable head, not 10 MB
    assert _fingerprint(postgres) == before


def test_a_10_mb_navn_and_a_1_mb_line_are_rejected_alone_in_a_csv_dump(
    postgres: PostgresResource, generated: Path, tmp_path: Path,
) -> None:
    import_file(postgres, generated / "enheter.csv.gz", source_label="before", batches=6)
    before = _fingerprint(postgres)
    header, rows = _csv_rows(generated)
    number, navn = header.index("organisasjonsnummer"), header.index("navn")
    giant, long_line = list(rows[0]), list(rows[0])
    giant[number], giant[navn] = _valid(22), "Stort navn AS " + "x" * TEN_MB
    long_line[number], long_line[navn] = _valid(23), "Langt navn AS " + "y" * ONE_MB
    dump = _write_csv(tmp_path / "giant.csv.gz", header, rows[:10] + [giant] + rows[10:20] + [long_line] + rows[20:])

    result = import_file(postgres, dump, source_label="giant")

    assert _counts(result) == (3002, 0, 0, 3000, 0)
    assert _rejected(postgres) == [("record_too_large", None), ("record_too_large", None)]
    assert _fingerprint(postgres) == before


def test_a_known_company_whose_new_record_is_rejected_keeps_its_previous_version(
    postgres: PostgresResource, generated: Path, records: list[dict[str, Any]], tmp_path: Path,
) -> None:
    import_file(postgres, generated / "enheter.json.gz", source_label="before", batches=6)
    before = _fingerprint(postgres)
    broken = {
        records[5]["organisasjonsnummer"]: ({**records[5], "stiftelsesdato": "2020-13-45"}, "invalid_stiftelsesdato"),
        records[6]["organisasjonsnummer"]: ({**records[6], "navn": ""}, "missing_navn"),
        records[7]["organisasjonsnummer"]: ({**records[7], "navn": "x" * TEN_MB}, "record_too_large"),
    }
    parts = [jackson(broken[r["organisasjonsnummer"]][0]) if r["organisasjonsnummer"] in broken else jackson(r)
             for r in records]
    parts[8] = parts[8].replace('"navn" : ', '"navn" ', 1)  # unparseable, but its number is still readable
    dump = _write_json(tmp_path / "broken.json.gz", parts)

    result = import_file(postgres, dump, source_label="broken")

    assert _counts(result) == (3000, 0, 0, 2996, 0) and result.kept_previous == 4
    assert _rejected(postgres) == [("invalid_stiftelsesdato", records[5]["organisasjonsnummer"]),
                                   ("missing_navn", records[6]["organisasjonsnummer"]),
                                   ("record_too_large", None), ("unparseable", None)]
    assert _fingerprint(postgres) == before  # not marked deleted: the register still has them


def _home_page_companies() -> dict[str, tuple[str, str]]:
    """Valid new companies in batch 0 of 6 whose hjemmeside is an address, never a page to fetch."""
    targets = [("127.0.0.1", "private address 127.0.0.1"),
               ("http://169.254.169.254/latest/meta-data/", "private address 169.254.169.254"),
               ("10.0.0.1:8080/admin", "private address 10.0.0.1"),
               ("[::1]/", "private address ::1"),
               ("8.8.8.8", "IP address 8.8.8.8 instead of a host name"),
               ("2130706433", "unparseable hjemmeside"),  # 127.0.0.1 as one number
               ("0177.0.0.1", "unparseable hjemmeside")]  # 127.0.0.1 in octal
    numbers = (n for i in range(10_000) if batch_of(n := _valid(100 + 3 * i), 6) == 0)
    return {next(numbers): target for target in targets}


def test_home_pages_on_loopback_metadata_and_private_addresses_are_refused_with_reasons_and_nothing_else_moves(
    postgres: PostgresResource, generated: Path, records: list[dict[str, Any]], tmp_path: Path,
    registers_service: StartService, test_db_url_text: str,
) -> None:
    private = _home_page_companies()
    strangers = [{**records[0], "organisasjonsnummer": n, "navn": f"Intern {i} AS", "hjemmeside": home}
                 for i, (n, (home, _)) in enumerate(private.items())]
    dump = _write_json(tmp_path / "private.json.gz", [jackson(r) for r in records + strangers])
    service = registers_service(generated, slow_page_s=0.2)
    host_port = service.base_url.split("://", 1)[1]
    registers = RegistersResource(rate_limit_per_s=0.0, max_in_flight=16, homepage_resolve=host_port,
                                  homepage_allow_private_addresses=True, timeout_s=2.0, retries=1, backoff_base_s=0.01)

    def run(dump_path: Path) -> tuple[dict[str, tuple[Any, ...]], dict[str, Any]]:
        with postgres.connection() as conn:
            conn.execute("TRUNCATE companies, enrichments, company_profiles, rejected_units, imports, pipeline_settings "
                         "RESTART IDENTITY CASCADE")
        import_file(postgres, dump_path, source_label="homes", batches=6)
        service.reset()
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(COMPANY_BATCHES.name, batch_keys(6))
            result = dg.materialize([website_profile], instance=instance, partition_key="b0000",
                                    resources={"postgres": make_resource(test_db_url_text, pool_max=2), "registers": registers})
        assert result.success
        with postgres.connection() as conn:
            rows = conn.execute("SELECT orgnr, outcome, http_status, error, data FROM enrichments "
                                "WHERE source = 'website_profile'").fetchall()
        return {orgnr: tuple(rest) for orgnr, *rest in rows}, service.stats()

    without, stats_without = run(generated / "enheter.json.gz")
    with_private, stats_with = run(dump)

    assert {n: with_private[n] for n in private} == {n: ("skipped", None, reason, None) for n, (_, reason) in private.items()}
    assert {n: row for n, row in with_private.items() if n not in private} == without
    assert stats_with == stats_without  # not one request more: the refusal comes before any connection

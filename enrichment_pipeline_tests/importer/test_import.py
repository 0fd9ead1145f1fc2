"""Importing the register's dump into a real PostgreSQL: formats, idempotence, deletions, rejects."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.errors import BadDumpError
from enrichment_pipeline.importer.run import import_file
from enrichment_pipeline.importer.validate import batch_of
from enrichment_pipeline.registers.orgnr import from_prefix
from enrichment_pipeline_tests.dumps import read_dump, write_json_dump

TYPED = ("orgnr, navn, organisasjonsform, naeringskode1, antall_ansatte, hjemmeside, postnummer, "
         "kommunenummer, landkode, stiftelsesdato, batch")


def _typed_rows(postgres: PostgresResource) -> list[tuple[Any, ...]]:
    with postgres.connection() as conn:
        return conn.execute(f"SELECT {TYPED} FROM companies ORDER BY orgnr").fetchall()


def _fingerprint(postgres: PostgresResource) -> tuple[Any, ...]:
    with postgres.connection() as conn:
        return conn.execute(
            "SELECT count(*), count(deleted_at), md5(string_agg(orgnr || record_hash || coalesce(deleted_at::text, ''), ',' ORDER BY orgnr)), "
            "max(updated_at) FROM companies"
        ).fetchone()


def _truncate(postgres: PostgresResource) -> None:
    with postgres.connection() as conn:
        conn.execute("TRUNCATE companies, rejected_units, imports, pipeline_settings RESTART IDENTITY CASCADE")


def test_json_and_csv_dumps_of_the_same_units_give_identical_rows(postgres: PostgresResource, generated: Path) -> None:
    json_result = import_file(postgres, generated / "enheter.json.gz", source_label="json", batches=20)
    from_json = _typed_rows(postgres)
    _truncate(postgres)
    csv_result = import_file(postgres, generated / "enheter.csv.gz", source_label="csv", batches=20)
    from_csv = _typed_rows(postgres)
    assert (json_result.format, csv_result.format) == ("json", "csv")
    assert json_result.rows_read == csv_result.rows_read == 3000
    assert len(from_json) == 3000 and from_json == from_csv


def test_importing_the_same_dump_twice_changes_nothing(postgres: PostgresResource, generated: Path) -> None:
    first = import_file(postgres, generated / "enheter.json.gz", source_label="a", batches=20)
    before = _fingerprint(postgres)
    second = import_file(postgres, generated / "enheter.json.gz", source_label="b", batches=20)
    assert (first.inserted, first.updated) == (3000, 0)
    assert (second.inserted, second.updated, second.unchanged, second.marked_deleted) == (0, 0, 3000, 0)
    assert second.changed_batches == []
    assert _fingerprint(postgres) == before


def test_a_later_dump_without_some_units_marks_exactly_those_deleted(
    postgres: PostgresResource, generated: Path, tmp_path: Path
) -> None:
    records = read_dump(generated / "enheter.json.gz")
    import_file(postgres, generated / "enheter.json.gz", source_label="full", batches=20)
    dropped = {r["organisasjonsnummer"] for r in records[100:107]}
    later = write_json_dump(tmp_path / "later.json.gz", [r for r in records if r["organisasjonsnummer"] not in dropped])
    result = import_file(postgres, later, source_label="later")
    with postgres.connection() as conn:
        deleted = {r[0] for r in conn.execute("SELECT orgnr FROM companies WHERE deleted_at IS NOT NULL").fetchall()}
        total = conn.execute("SELECT count(*) FROM companies").fetchone()[0]
    assert result.marked_deleted == 7 and deleted == dropped and total == 3000  # marked, never purged
    assert result.changed_batches == sorted({batch_of(n, 20) for n in dropped})
    # A unit that comes back is live again.
    import_file(postgres, generated / "enheter.json.gz", source_label="again")
    with postgres.connection() as conn:
        assert conn.execute("SELECT count(*) FROM companies WHERE deleted_at IS NOT NULL").fetchone()[0] == 0


def _valid(n: int) -> str:
    prefix = 91_000_000 + n
    while (number := from_prefix(prefix)) is None:
        prefix += 1
    return number


def test_rejects_are_counted_per_reason_stored_with_raw_text_and_the_rest_imported(
    postgres: PostgresResource, tmp_path: Path
) -> None:
    good = [{"organisasjonsnummer": _valid(i * 10), "navn": f"Bra {i} AS", "organisasjonsform": {"kode": "AS"}} for i in range(5)]
    bad_digit = good[0]["organisasjonsnummer"][:8] + str((int(good[0]["organisasjonsnummer"][8]) + 1) % 10)
    rejects = [
        {"organisasjonsnummer": bad_digit, "navn": "Feil siffer AS"},
        {"navn": "Uten nummer AS"},
        {"organisasjonsnummer": _valid(777), "navn": ""},
        {"organisasjonsnummer": "12345", "navn": "Kort AS"},
        {"organisasjonsnummer": _valid(888), "navn": "Rart AS", "stiftelsesdato": "2020-13-45"},
        good[1],  # a duplicate of a unit already in the dump
    ]
    broken = '{\n  "organisasjonsnummer" : "999999999",\n  "navn" : "Knust AS",,\n}'
    path = write_json_dump(tmp_path / "mixed.json.gz", good + rejects, raw_records=[broken])
    result = import_file(postgres, path, source_label="mixed", batches=4)
    assert result.accepted == 5 and result.rows_read == 12
    assert dict(result.rejected) == {
        "orgnr_bad_check_digit": 1, "missing_orgnr": 1, "missing_navn": 1, "orgnr_not_nine_digits": 1,
        "invalid_stiftelsesdato": 1, "duplicate_orgnr": 1, "unparseable": 1,
    }
    with postgres.connection() as conn:
        stored = conn.execute("SELECT reason, orgnr, raw FROM rejected_units ORDER BY position").fetchall()
        companies = conn.execute("SELECT count(*) FROM companies").fetchone()[0]
    assert companies == 5 and len(stored) == 7
    assert ("unparseable", None) == stored[-1][:2] and "Knust AS" in stored[-1][2]
    assert stored[0][:2] == ("orgnr_bad_check_digit", bad_digit) and "Feil siffer AS" in stored[0][2]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("truncated.json.gz", None, "is truncated"),
        ("error.html", b"<!DOCTYPE html><html><body>503 Service Unavailable</body></html>", "HTML or XML page"),
        ("object.json", b'{"organisasjonsnummer": "974760673", "navn": "x"}', "JSON object, not the array"),
        ("cut.json", b'[ {\n  "organisasjonsnummer" : "974760673",\n  "navn" : "A"\n}, {\n  "organisasjonsnummer" : "9', "ends before the JSON array is closed"),
        ("other.csv", b"id;name\n1;x\n", "neither a JSON array of units nor a CSV"),
        ("empty.json.gz", b"", "is empty"),
    ],
)
def test_a_file_that_is_not_a_dump_fails_with_one_line_and_leaves_companies_untouched(
    postgres: PostgresResource, generated: Path, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    import_file(postgres, generated / "enheter.json.gz", source_label="good", batches=20)
    before = _fingerprint(postgres)
    path = tmp_path / name
    if content is None:
        path.write_bytes((generated / "enheter.json.gz").read_bytes()[:50_000])
    elif name.endswith(".gz"):
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    with pytest.raises(BadDumpError, match=message) as caught:
        import_file(postgres, path, source_label="bad")
    assert "\n" not in str(caught.value)
    assert _fingerprint(postgres) == before
    with postgres.connection() as conn:
        assert conn.execute("SELECT status FROM imports ORDER BY id DESC LIMIT 1").fetchone()[0] == "failed"
        assert conn.execute("SELECT count(*) FROM rejected_units").fetchone()[0] == 0


def test_a_dump_missing_most_companies_is_refused(postgres: PostgresResource, generated: Path, tmp_path: Path) -> None:
    records = read_dump(generated / "enheter.json.gz")
    import_file(postgres, generated / "enheter.json.gz", source_label="full", batches=20)
    before = _fingerprint(postgres)
    partial = write_json_dump(tmp_path / "partial.json.gz", records[:1000])
    with pytest.raises(BadDumpError, match="lacks 2000 of 3000 live companies"):
        import_file(postgres, partial, source_label="partial")
    assert _fingerprint(postgres) == before


def test_a_company_keeps_its_batch_when_ten_percent_more_companies_arrive(
    postgres: PostgresResource, generated: Path, tmp_path: Path
) -> None:
    records = read_dump(generated / "enheter.json.gz")
    import_file(postgres, generated / "enheter.json.gz", source_label="first", batches=20)
    with postgres.connection() as conn:
        before = dict(conn.execute("SELECT orgnr, batch FROM companies").fetchall())
    extra = [{**records[i], "organisasjonsnummer": _valid(5000 + i * 3), "navn": f"Ny {i} AS"} for i in range(300)]
    grown = write_json_dump(tmp_path / "grown.json.gz", records + extra)
    result = import_file(postgres, grown, source_label="grown", batches=999)  # the first import fixed the count
    with postgres.connection() as conn:
        after = dict(conn.execute("SELECT orgnr, batch FROM companies").fetchall())
    assert result.inserted == 300 and result.batches == 20
    assert {k: after[k] for k in before} == before


def test_batches_are_balanced_for_a_full_register_sized_sample() -> None:
    numbers = [n for p in range(80_000_000, 80_400_000, 3) if (n := from_prefix(p))][:120_000]
    sizes = [0] * 120
    for number in numbers:
        sizes[batch_of(number, 120)] += 1
    mean = len(numbers) / 120
    assert max(sizes) <= 1.5 * mean and min(sizes) > 0


def test_register_quirks_survive_the_round_trip_to_show_json(postgres: PostgresResource, generated: Path) -> None:
    from enrichment_pipeline.cli.pipeline import _register_view
    from enrichment_pipeline.store.companies import company

    records = {r["organisasjonsnummer"]: r for r in read_dump(generated / "enheter.json.gz")}
    import_file(postgres, generated / "enheter.json.gz", source_label="quirks", batches=20)

    def first(predicate: Any) -> str:
        return next(n for n, r in records.items() if predicate(r))

    quirky = {
        "withheld employees": first(lambda r: r.get("harRegistrertAntallAnsatte") and "antallAnsatte" not in r),
        "foreign address": first(lambda r: r.get("forretningsadresse", {}).get("landkode", "NO") != "NO"),
        "null address line": first(lambda r: None in r.get("forretningsadresse", {}).get("adresse", []) + r.get("postadresse", {}).get("adresse", [])),
        "messy hjemmeside": first(lambda r: "hjemmeside" in r and r["hjemmeside"] != r["hjemmeside"].lower()),
        "historical names": first(lambda r: r.get("historiskeNavn")),
    }
    for quirk, number in quirky.items():
        found = company(postgres, number)
        assert found is not None, quirk
        assert _register_view(found["record"]) == _register_view(records[number]), quirk

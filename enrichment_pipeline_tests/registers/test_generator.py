"""The synthetic register data: real files from `generate`, checked against docs/data-layout.md
and the quirks in REGISTERS.md. One directory is generated per module and read by every test."""

from __future__ import annotations

import collections
import csv
import gzip
import io
import json
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from enrichment_pipeline.registers import generator, orgnr
from enrichment_pipeline.registers.generator import crc32_combine, generate, main
from enrichment_pipeline.registers.synthetic import ACCOUNT_FILERS, homepage_host

COMPANIES = 4_000  # two chunks, so the worker pool and the block-joined gzip are exercised
CHANGES = 400
SEED = 7
FILES = ("enheter.json.gz", "enheter.csv.gz", "units.jsonl.gz", "roles.jsonl.gz", "accounts.jsonl.gz",
         "subunits.jsonl.gz", "addresses.jsonl.gz", "homepages.jsonl.gz", "updates.jsonl.gz")
ALWAYS_PRESENT = (
    "organisasjonsnummer", "navn", "organisasjonsform", "registreringsdatoEnhetsregisteret",
    "registrertIMvaregisteret", "registrertIForetaksregisteret", "registrertIStiftelsesregisteret",
    "registrertIFrivillighetsregisteret", "registrertIPartiregisteret", "konkurs", "underAvvikling",
    "underTvangsavviklingEllerTvangsopplosning", "maalform", "harRegistrertAntallAnsatte", "erIKonsern",
    "respons_klasse",
)
CSV_SPELLINGS = {"registreringsdatoenhetsregisteret": "registreringsdatoEnhetsregisteret",
                 "registrertIMvaRegisteret": "registrertIMvaregisteret"}
DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
NACE_CODE = re.compile(r"\A\d{2}\.\d{3}\Z")


@dataclass
class Data:
    root: Path
    manifest: dict[str, Any]
    dump_text: str
    dump: list[dict[str, Any]]
    csv_header: list[str]
    csv_rows: list[list[str]]
    units: dict[str, dict[str, Any]]
    roles: dict[str, Any]
    accounts: dict[str, list[dict[str, Any]]]
    subunits: list[dict[str, Any]]
    addresses: list[dict[str, Any]]
    homepages: list[dict[str, Any]]
    updates: list[dict[str, Any]]

    @property
    def dump_by_orgnr(self) -> dict[str, dict[str, Any]]:
        return {r["organisasjonsnummer"]: r for r in self.dump}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _load(root: Path) -> Data:
    dump_text = gzip.decompress((root / "enheter.json.gz").read_bytes()).decode("utf-8")
    with gzip.open(root / "enheter.csv.gz", "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return Data(
        root=root,
        manifest=json.loads((root / "manifest.json").read_text()),
        dump_text=dump_text,
        dump=json.load(io.StringIO(dump_text)),
        csv_header=rows[0],
        csv_rows=rows[1:],
        units={row["organisasjonsnummer"]: row for row in _jsonl(root / "units.jsonl.gz")},
        roles={row["organisasjonsnummer"]: row["body"] for row in _jsonl(root / "roles.jsonl.gz")},
        accounts={row["organisasjonsnummer"]: row["body"] for row in _jsonl(root / "accounts.jsonl.gz")},
        subunits=_jsonl(root / "subunits.jsonl.gz"),
        addresses=_jsonl(root / "addresses.jsonl.gz"),
        homepages=_jsonl(root / "homepages.jsonl.gz"),
        updates=_jsonl(root / "updates.jsonl.gz"),
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    root = tmp_path_factory.mktemp("generated")
    generate(root, COMPANIES, seed=SEED, changes=CHANGES)
    return _load(root)


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, path + (key,))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, path + ("[]",))


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


# -- determinism and file format ---------------------------------------------------------------
def test_same_seed_writes_byte_identical_files_in_one_process_too(
    data: Data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixture ran two worker processes; this run renders every chunk in this process.
    monkeypatch.setattr(generator.os, "cpu_count", lambda: 1)
    generate(tmp_path, COMPANIES, seed=SEED, changes=CHANGES)
    for name in FILES + ("manifest.json",):
        assert (tmp_path / name).read_bytes() == (data.root / name).read_bytes(), name


def test_the_dump_does_not_depend_on_the_feed_after_it(data: Data, tmp_path: Path) -> None:
    manifest = generate(tmp_path, COMPANIES, seed=SEED, changes=0)
    for name in ("enheter.json.gz", "enheter.csv.gz", "accounts.jsonl.gz", "subunits.jsonl.gz"):
        assert (tmp_path / name).read_bytes() == (data.root / name).read_bytes(), name
    assert manifest["etag"] == data.manifest["etag"]


def test_another_seed_writes_other_units(data: Data, tmp_path: Path) -> None:
    generate(tmp_path, 300, seed=SEED + 1)
    other = json.loads(gzip.decompress((tmp_path / "enheter.json.gz").read_bytes()))
    assert len(other) == 300
    first = {r["organisasjonsnummer"] for r in data.dump[:300]}
    assert {r["organisasjonsnummer"] for r in other}.isdisjoint(first)
    assert not (tmp_path / "updates.jsonl.gz").exists(), "no --changes, no feed"


@pytest.mark.parametrize("name", FILES)
def test_files_are_single_member_gzip_without_time_or_name(data: Data, name: str) -> None:
    raw = (data.root / name).read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00", "deflate, no FNAME flag"
    assert raw[4:8] == b"\x00\x00\x00\x00", "mtime 0"
    inflater = zlib.decompressobj(wbits=31)  # one member only: a plain zlib reader sees it all
    inflater.decompress(raw)
    assert inflater.eof and inflater.unused_data == b""


def test_crc32_combine_agrees_with_zlib() -> None:
    rng = random.Random(3)
    first, second = rng.randbytes(1000), rng.randbytes(70_001)
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(first + second)


def test_manifest_describes_the_directory(data: Data) -> None:
    m = data.manifest
    assert (m["format"], m["seed"], m["companies"], m["changes"]) == (1, SEED, COMPANIES, CHANGES)
    assert re.fullmatch(r"[0-9a-f]{16,64}", m["etag"])
    assert re.fullmatch(r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} CEST \d{4}", m["last_modified"])
    assert m["first_update_id"] == data.updates[0]["oppdateringsid"] >= 25_000_000
    counts = m["counts"]
    assert counts["units"] == len(data.dump) == COMPANIES
    assert counts["subunits"] == len(data.subunits)
    assert counts["roles"] == len(data.roles) and counts["accounts"] == len(data.accounts)
    assert counts["addresses"] == len(data.addresses) and counts["homepages"] == len(data.homepages)
    assert counts["updates"] == len(data.updates) == CHANGES


# -- organisation numbers -------------------------------------------------------------------------
def test_every_number_is_valid_and_unique_across_units_and_subunits(data: Data) -> None:
    numbers = list(data.units) + [s["organisasjonsnummer"] for s in data.subunits]
    assert len(numbers) == len(set(numbers))
    assert all(orgnr.is_valid(n) for n in numbers)


def test_numbers_spread_over_the_space_and_not_only_8_or_9(data: Data) -> None:
    numbers = [r["organisasjonsnummer"] for r in data.dump]
    other_first = _share(sum(not n.startswith(("8", "9")) for n in numbers), len(numbers))
    assert 0.01 <= other_first <= 0.10
    assert len({n[:2] for n in numbers}) >= 40, "many two-digit prefixes"
    gaps = sorted(abs(int(a) - int(b)) for a, b in zip(numbers, numbers[1:]))
    assert gaps[len(gaps) // 2] > 1_000_000, "neighbours in the dump are not sequential numbers"


# -- the JSON dump --------------------------------------------------------------------------------
def test_json_dump_is_a_jackson_pretty_array(data: Data) -> None:
    text = data.dump_text
    assert text.startswith('[ {\n  "organisasjonsnummer" : "')
    assert text.endswith('\n} ]')
    assert text.count("\n}, {\n") == COMPANIES - 1
    assert '"links" : [ ]' in text and "_links" not in text
    assert '": ' not in text and '":"' not in text, 'keys are written as "key" : value'
    assert all(re.match(r'\A *("[^"]+" : |[}\]])', line) for line in text.splitlines()[1:])
    assert "    \"links\" : [ ]\n  }" in text, "organisasjonsform carries links too"
    assert max(map(ord, text)) <= 0xFF, "the vocabularies stay within Latin-1 (speed, see synthetic.py)"


def test_dump_records_have_the_always_present_keys(data: Data) -> None:
    for record in data.dump:
        missing = [key for key in ALWAYS_PRESENT if key not in record]
        assert not missing, (record["organisasjonsnummer"], missing)
        assert record["respons_klasse"] == "Enhet"
        assert record["links"] == [] and record["organisasjonsform"]["links"] == []
        assert set(record["organisasjonsform"]) == {"kode", "beskrivelse", "links"}


def test_absent_values_are_omitted_never_null(data: Data) -> None:
    records = data.dump + [u["record"] for u in data.units.values()] + [s["record"] for s in data.subunits]
    for record in records:
        for path, value in _walk(record):
            if value is None:
                assert path[-2:] == ("adresse", "[]"), (record["organisasjonsnummer"], path)


def test_legal_form_shares_follow_the_register(data: Data) -> None:
    forms = collections.Counter(r["organisasjonsform"]["kode"] for r in data.dump)
    expected = {"ENK": 0.39, "AS": 0.37, "FLI": 0.11, "ESEK": 0.03, "UTLA": 0.024, "NUF": 0.022}
    for code, share in expected.items():
        assert abs(_share(forms[code], COMPANIES) - share) < max(0.035, share * 0.5), (code, forms[code])
    assert len(forms) >= 12, "the long tail of other forms is present"


def test_small_employers_are_registered_without_a_count(data: Data) -> None:
    withheld = [r for r in data.dump if r["harRegistrertAntallAnsatte"] and "antallAnsatte" not in r]
    counted = [r for r in data.dump if "antallAnsatte" in r]
    none = [r for r in data.dump if not r["harRegistrertAntallAnsatte"]]
    assert withheld and counted and _share(len(none), COMPANIES) > 0.4
    assert all(r["antallAnsatte"] >= 5 and r["harRegistrertAntallAnsatte"] for r in counted)


def test_addresses_hold_the_register_quirks(data: Data) -> None:
    addresses = [r[key] for r in data.dump for key in ("postadresse", "forretningsadresse") if key in r]
    assert all(1 <= len(a["adresse"]) <= 3 for a in addresses)
    assert any(None in a["adresse"] for a in addresses) and any("" in a["adresse"] for a in addresses)
    foreign = [a for a in addresses if a["landkode"] != "NO"]
    assert foreign and all(a["land"] != "Norge" for a in foreign)
    assert all("postnummer" not in a and "kommune" not in a and "kommunenummer" not in a for a in foreign)
    assert _share(sum(any(c.isdigit() for c in a["poststed"]) for a in foreign), len(foreign)) > 0.8
    norwegian = [a for a in addresses if a["landkode"] == "NO"]
    assert all(re.fullmatch(r"\d{4}", a["postnummer"]) for a in norwegian)
    assert all(re.fullmatch(r"\d{4}", a["kommunenummer"]) for a in norwegian)


def test_homepage_values_look_like_what_people_typed(data: Data) -> None:
    values = [r["hjemmeside"] for r in data.dump if "hjemmeside" in r]
    assert 0.08 <= _share(len(values), COMPANIES) <= 0.17
    assert not any("://" in v or v.lower().startswith("http") for v in values)
    assert 0.70 <= _share(sum(v.lower().startswith("www.") for v in values), len(values)) <= 0.92
    assert any("/" in v.rstrip("/") for v in values), "some have paths"
    assert any(v.endswith("/") for v in values)
    assert any(v != v.lower() for v in values), "some are MiXeD case"
    assert any(".wixsite.com/" in v or ".weebly.com" in v or ".mystrikingly.com" in v for v in values)
    assert any(homepage_host(v) is None for v in values), "a little junk"
    by_form = collections.defaultdict(list)
    for r in data.dump:
        by_form[r["organisasjonsform"]["kode"]].append("hjemmeside" in r)
    shares = {form: _share(sum(flags), len(flags)) for form, flags in by_form.items()}
    assert shares["ENK"] < shares["AS"] < shares["FLI"] and shares["AS"] < shares["BRL"]


def test_industry_codes_and_sectors_use_the_code_formats(data: Data) -> None:
    keys = ("naeringskode1", "naeringskode2", "naeringskode3")
    codes = [r[k]["kode"] for r in data.dump for k in keys if k in r]
    assert codes and all(NACE_CODE.match(c) for c in codes)
    assert set(codes) & {"41.200", "62.010", "64.200", "68.209", "70.220", "96.020"}, "some SN2007 codes"
    assert any("naeringskode2" in r for r in data.dump)
    sectors = [r["institusjonellSektorkode"] for r in data.dump if "institusjonellSektorkode" in r]
    assert _share(len(sectors), COMPANIES) > 0.7 and all(re.fullmatch(r"\d{4}", s["kode"]) for s in sectors)


def test_dates_use_the_register_formats(data: Data) -> None:
    for r in data.dump:
        for key in ("registreringsdatoEnhetsregisteret", "stiftelsesdato", "konkursdato", "vedtektsdato"):
            assert key not in r or DATE.match(r[key]), (key, r.get(key))
        if "sisteInnsendteAarsregnskap" in r:
            assert re.fullmatch(r"20\d\d", r["sisteInnsendteAarsregnskap"])
    history = [h for r in data.dump for h in r.get("historiskeNavn", [])]
    assert history
    stamp = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
    assert all(stamp.fullmatch(h["fraDato"]) and stamp.fullmatch(h["tilDato"]) for h in history)


def test_sole_proprietorships_carry_their_generated_owner_name(data: Data) -> None:
    checked = 0
    for r in data.dump:
        if r["organisasjonsform"]["kode"] != "ENK" or r["organisasjonsnummer"] not in data.roles:
            continue
        groups = {g["type"]["kode"]: g for g in data.roles[r["organisasjonsnummer"]]["rollegrupper"]}
        owner = groups["INNH"]["roller"][0]["person"]
        assert owner["navn"]["etternavn"].upper() in r["navn"] and owner["navn"]["fornavn"].upper() in r["navn"]
        checked += 1
    assert checked > 1000


# -- the CSV dump ---------------------------------------------------------------------------------
def _csv_expected(record: dict[str, Any], column: str) -> str:
    value: Any = record
    for part in CSV_SPELLINGS.get(column, column).split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "/n".join("" if v is None else str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def test_csv_dump_has_a_quoted_dotted_header(data: Data) -> None:
    header = data.csv_header
    assert 85 <= len(header) <= 95 and len(set(header)) == len(header)
    for column in (
        "organisasjonsnummer", "organisasjonsform.kode", "postadresse.adresse", "forretningsadresse.kommunenummer",
        "naeringskode1.kode", "registreringsdatoenhetsregisteret", "registrertIMvaRegisteret",
        "institusjonellSektorkode.beskrivelse", "vedtektsfestetFormaal", "aktivitet", "overordnetEnhet",
    ):
        assert column in header
    first_line = gzip.decompress((data.root / "enheter.csv.gz").read_bytes()).split(b"\n", 2)[:2]
    for line in first_line:
        assert line.startswith(b'"') and line.endswith(b'"') and b'","' in line


def test_csv_dump_holds_the_same_units_with_the_same_values(data: Data) -> None:
    assert len(data.csv_rows) == COMPANIES
    for record, row in zip(data.dump, data.csv_rows):
        expected = [_csv_expected(record, column) for column in data.csv_header]
        assert row == expected, record["organisasjonsnummer"]
    assert {"true", "false"} <= {cell for row in data.csv_rows for cell in row}
    assert any("/n" in row[data.csv_header.index("forretningsadresse.adresse")] for row in data.csv_rows)


def test_every_json_field_has_a_csv_column(data: Data) -> None:
    columns = {CSV_SPELLINGS.get(c, c) for c in data.csv_header}
    no_column = {"links", "respons_klasse", "historiskeNavn"}
    for record in data.dump:
        for key, value in record.items():
            if key in no_column:
                continue
            leaves = [f"{key}.{sub}" for sub in value if sub != "links"] if isinstance(value, dict) else [key]
            assert set(leaves) <= columns, set(leaves) - columns


# -- roles, accounts, sub-units -------------------------------------------------------------------
def test_roles_belong_to_units_and_reference_existing_units(data: Data) -> None:
    assert set(data.roles) <= set(data.units)
    assert 0.02 <= 1 - _share(len(data.roles), len(data.units)) <= 0.10, "about 5% of units have no roles"
    referenced = []
    for body in data.roles.values():
        assert body["rollegrupper"] and "_links" in body
        for group in body["rollegrupper"]:
            assert DATE.match(group["sistEndret"])
            for role in group["roller"]:
                assert isinstance(role["avregistrert"], bool) and isinstance(role["rekkefolge"], int)
                if "person" in role:
                    assert DATE.match(role["person"]["fodselsdato"]) and role["person"]["navn"]["etternavn"]
                else:
                    referenced.append(role["enhet"]["organisasjonsnummer"])
    assert referenced and set(referenced) <= set(data.units)
    codes = {g["type"]["kode"] for body in data.roles.values() for g in body["rollegrupper"]}
    assert {"DAGL", "STYR", "REVI", "REGN", "INNH"} <= codes


def test_accounts_only_for_filing_forms_and_not_for_all_of_them(data: Data) -> None:
    dump = data.dump_by_orgnr
    assert data.accounts and all(dump[n]["organisasjonsform"]["kode"] in ACCOUNT_FILERS for n in data.accounts)
    companies = [r for r in data.dump if r["organisasjonsform"]["kode"] == "AS"]
    filed = sum(r["organisasjonsnummer"] in data.accounts for r in companies)
    assert 0.5 < _share(filed, len(companies)) < 0.95
    for number, filings in data.accounts.items():
        kinds = [f["regnskapstype"] for f in filings]
        assert kinds == sorted(kinds), "KONSERN first, then SELSKAP"
        assert max(collections.Counter(kinds).values()) <= 3
        latest = max(f["regnskapsperiode"]["tilDato"][:4] for f in filings)
        assert dump[number]["sisteInnsendteAarsregnskap"] == latest
        for f in filings:
            assert "regnkapsprinsipper" in f, "the upstream typo is kept"
            assert "sumInnskuttEgenkaptial" in f["egenkapitalGjeld"]["egenkapital"]["innskuttEgenkapital"]
            assert f["virksomhet"]["organisasjonsnummer"] == number
    every = [f for filings in data.accounts.values() for f in filings]
    assert any(f["valuta"] == "USD" for f in every)
    assert any(f["resultatregnskapResultat"]["driftsresultat"]["driftsinntekter"] == {} for f in every)
    assert any(f["regnskapstype"] == "KONSERN" for f in every)


def test_subunits_hang_off_existing_parents_concentrated_on_a_few(data: Data) -> None:
    assert 0.5 <= _share(len(data.subunits), COMPANIES) <= 1.0
    per_parent = collections.Counter(s["overordnetEnhet"] for s in data.subunits)
    assert set(per_parent) <= set(data.dump_by_orgnr)
    assert max(per_parent.values()) >= 20 and _share(len(per_parent), COMPANIES) < 0.45
    for line in data.subunits:
        record = line["record"]
        assert record["organisasjonsnummer"] == line["organisasjonsnummer"] not in data.units
        assert record["overordnetEnhet"] == line["overordnetEnhet"]
        assert record["beliggenhetsadresse"]["landkode"] == "NO" and "naeringskode1" in record
        assert record["respons_klasse"] == "Underenhet"


# -- addresses and home pages -----------------------------------------------------------------
def test_business_addresses_can_be_found_in_kartverket_mostly(data: Data) -> None:
    index = {(a["adressetekst"], a["postnummer"]): a for a in data.addresses}
    assert len(index) == len(data.addresses), "one entry per address"
    business = [
        r["forretningsadresse"] for r in data.dump if r.get("forretningsadresse", {}).get("landkode") == "NO"
    ]
    found = [index.get((a["adresse"][0], a["postnummer"])) for a in business]
    assert 0.01 <= _share(found.count(None), len(found)) <= 0.07, "a small share is deliberately unknown"
    for address, hit in zip(business, found):
        if hit is not None:
            assert hit["kommunenummer"] == address["kommunenummer"] and hit["poststed"] == address["poststed"]
    for a in data.addresses:
        point = a["representasjonspunkt"]
        assert point["epsg"] == "EPSG:4258" and 57.9 <= point["lat"] <= 71.2 and 4.5 <= point["lon"] <= 31.2


def test_one_homepage_per_distinct_host(data: Data) -> None:
    records = data.dump + [u["record"] for u in data.units.values() if u["state"] == "active"]
    values = {r["hjemmeside"] for r in records if "hjemmeside" in r}
    hosts = {homepage_host(v) for v in values} - {None}
    listed = [h["host"] for h in data.homepages]
    assert len(listed) == len(set(listed)) and set(listed) == hosts
    assert all(h == h.lower() for h in listed)


def test_homepages_carry_contacts_and_misbehave_sometimes(data: Data) -> None:
    behaviours = collections.Counter(h["behaviour"] for h in data.homepages)
    assert set(behaviours) == {"ok", "slow", "huge", "redirect_loop", "missing"}
    assert behaviours["ok"] > len(data.homepages) * 0.7
    html = " ".join(p.get("html", "") for h in data.homepages for p in h["pages"].values())
    assert "<title>" in html and '<meta name="description"' in html and "mailto:" in html
    assert re.search(r"\+47 \d\d \d\d \d\d \d\d", html) and re.search(r">\d{8}<", html)
    for social in ("facebook.com", "linkedin.com", "instagram.com"):
        assert social in html
    redirects = [p for h in data.homepages for p in h["pages"].values() if p["status"] in (301, 302)]
    assert redirects and all(p["location"].startswith("https://") for p in redirects)
    assert any(h["robots"] and "Disallow: /\n" in h["robots"] for h in data.homepages)
    assert any(h["robots"] is None for h in data.homepages)


# -- the change feed --------------------------------------------------------------------------
def test_feed_ids_increase_and_dates_use_the_feed_format(data: Data) -> None:
    ids = [u["oppdateringsid"] for u in data.updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", u["dato"]) for u in data.updates)
    dates = [u["dato"] for u in data.updates]
    assert dates == sorted(dates)
    kinds = collections.Counter(u["endringstype"] for u in data.updates)
    for kind, share in {"Ny": 0.30, "Endring": 0.55, "Sletting": 0.10, "Fjernet": 0.05}.items():
        assert abs(_share(kinds[kind], CHANGES) - share) < 0.07, kinds
    assert max(collections.Counter(u["organisasjonsnummer"] for u in data.updates).values()) > 1, "units recur"


def test_units_file_holds_the_state_after_the_feed(data: Data) -> None:
    last = {u["organisasjonsnummer"]: u["endringstype"] for u in data.updates}
    new = {u["organisasjonsnummer"] for u in data.updates if u["endringstype"] == "Ny"}
    dump = data.dump_by_orgnr
    assert len(data.units) == COMPANIES + len(new) and new.isdisjoint(dump)
    expected_state = {"Ny": "active", "Endring": "active", "Sletting": "deleted", "Fjernet": "removed"}
    for number, unit in data.units.items():
        assert unit["state"] == expected_state.get(last.get(number, "Ny"), "active"), number
        record = unit["record"]
        if unit["state"] == "deleted":
            assert set(record) == {"organisasjonsnummer", "slettedato", "respons_klasse", "_links"}
            assert record["respons_klasse"] == "SlettetEnhet" and DATE.match(record["slettedato"])
        elif unit["state"] == "removed":
            assert set(record) == {"organisasjonsnummer", "slettedato", "_links"}
        else:
            assert record["respons_klasse"] == "Enhet" and "_links" in record and "links" not in record
            assert "_links" in record["organisasjonsform"]
    changed = [n for n, kind in last.items() if kind == "Endring" and n in dump]
    assert changed
    for number in changed:
        api = dict(data.units[number]["record"])
        before = dict(dump[number])
        for record in (api, before):
            record.pop("_links", None), record.pop("links", None), record.pop("organisasjonsform")
        assert api != before, number


def test_unchanged_units_answer_the_same_record_as_the_dump(data: Data) -> None:
    touched = {u["organisasjonsnummer"] for u in data.updates}
    for record in data.dump[:500]:
        if record["organisasjonsnummer"] in touched:
            continue
        api = data.units[record["organisasjonsnummer"]]["record"]
        assert api["_links"]["self"]["href"].endswith("/enheter/" + record["organisasjonsnummer"])
        plain = {k: v for k, v in api.items() if k != "_links"}
        plain["organisasjonsform"] = {k: v for k, v in api["organisasjonsform"].items() if k != "_links"}
        dumped = {k: v for k, v in record.items() if k != "links"}
        dumped["organisasjonsform"] = {k: v for k, v in record["organisasjonsform"].items() if k != "links"}
        assert plain == dumped


# -- helpers and the command line -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("www.bakkenbygg.no", "www.bakkenbygg.no"),
        ("WWW.BakkenBygg.no/", "www.bakkenbygg.no"),
        ("bakken.wixsite.com/bakken", "bakken.wixsite.com"),
        ("www.|bakkenbygg.no", None),
        ("www..bakkenbygg.no", None),
        ("bakkenbygg", None),
        ("ikke aktuell", None),
    ],
)
def test_homepage_host_normalises_or_rejects(value: str, host: str | None) -> None:
    assert homepage_host(value) == host


def test_command_line_writes_the_directory_and_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--companies", "250", "--out", str(tmp_path / "out"), "--seed", "3", "--changes", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "250 units" in lines[0]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (manifest["companies"], manifest["seed"], manifest["changes"]) == (250, 3, 20)


def test_a_failed_run_leaves_no_partial_files(tmp_path: Path) -> None:
    def stop(done: int, total: int) -> None:
        raise RuntimeError("stopped by the caller")

    with pytest.raises(RuntimeError):
        generate(tmp_path, 2_500, progress=stop)
    assert not list(tmp_path.glob("*.part")) and not (tmp_path / "manifest.json").exists()

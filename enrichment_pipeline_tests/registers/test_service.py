"""The local registers service over real sockets, with `requests` as the client.

The data directory is written by hand here, following docs/data-layout.md, until the
generator exists; the lead will switch these tests to the real generator.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from enrichment_pipeline.registers.faults import Faults
from enrichment_pipeline.registers.orgnr import from_prefix
from enrichment_pipeline.registers.service import HUGE_BODY_BYTES, RegistersService
from enrichment_pipeline_tests.conftest import StartService

API = "/enhetsregisteret/api"
ETAG = "5f2a9c0e1b7d"
LAST_MODIFIED = "Wed Aug 05 04:30:57 CEST 2026"
FIRST_UPDATE_ID = 5000
UPDATE_COUNT = 30
DUMP_V2 = "application/vnd.brreg.enhetsregisteret.enhet.v2+gzip;charset=UTF-8"


@dataclass(frozen=True)
class Fixture:
    data_dir: Path
    active: str
    deleted: str
    removed: str
    unknown: str
    parent: str  # an active unit with three sub-units, roles and accounts
    lonely: str  # an active unit with no sub-units, roles or accounts
    subunits: tuple[str, ...]


def _numbers(count: int, start: int = 91_000_000) -> Iterator[str]:
    prefix = start
    made = 0
    while made < count:
        number = from_prefix(prefix)
        prefix += 1
        if number is not None:
            made += 1
            yield number


def _links(path: str) -> dict[str, Any]:
    return {"self": {"href": f"https://data.brreg.no{API}/{path}"}}


def _unit(orgnr: str, navn: str, form: str = "AS") -> dict[str, Any]:
    return {
        "organisasjonsnummer": orgnr,
        "navn": navn,
        "organisasjonsform": {"kode": form, "beskrivelse": "Aksjeselskap", "_links": {}},
        "forretningsadresse": {
            "land": "Norge",
            "postnummer": "0155",
            "kommunenummer": "0301",
            "adresse": ["Storgata 1"],
        },
        "registreringsdatoEnhetsregisteret": "2020-01-02",
        "registrertIMvaregisteret": True,
        "konkurs": False,
        "respons_klasse": "Enhet",
        "_links": _links(f"enheter/{orgnr}"),
    }


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_dumps(root: Path, records: list[dict[str, Any]]) -> None:
    dump = [{**{k: v for k, v in r.items() if k != "_links"}, "links": []} for r in records]
    text = json.dumps(dump, indent=2, separators=(",", " : "), ensure_ascii=False)
    (root / "enheter.json.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
    csv = '"organisasjonsnummer","navn","organisasjonsform.kode"\n' + "".join(
        f'"{r["organisasjonsnummer"]}","{r["navn"]}","{r["organisasjonsform"]["kode"]}"\n' for r in records
    )
    (root / "enheter.csv.gz").write_bytes(gzip.compress(csv.encode(), mtime=0))


def _sites() -> list[dict[str, Any]]:
    home = {"/": {"status": 200, "html": "<html><body>Velkommen</body></html>"}}
    return [
        {
            "host": "www.ok-example.no",
            "pages": {**home, "/old": {"status": 301, "location": "https://www.ok-example.no/"}},
            "robots": "User-agent: *\nDisallow: /private\n",
            "behaviour": "ok",
        },
        {"host": "norobots.example.no", "pages": home, "robots": None, "behaviour": "ok"},
        {"host": "www.slow-example.no", "pages": home, "robots": None, "behaviour": "slow"},
        {"host": "www.huge-example.no", "pages": home, "robots": None, "behaviour": "huge"},
        {"host": "www.loop-example.no", "pages": home, "robots": None, "behaviour": "redirect_loop"},
        {"host": "www.missing-example.no", "pages": home, "robots": "User-agent: *\n",
         "behaviour": "missing"},
    ]


def _addresses() -> list[dict[str, Any]]:
    rows = [
        ("Storgata 1", "0155", "OSLO", "0301"),
        ("Storgata 12", "0155", "OSLO", "0301"),
        ("Kongens gate 5", "7011", "TRONDHEIM", "5001"),
        ("Lillestorgata 3", "3001", "DRAMMEN", "3301"),
    ]
    return [
        {
            "adressetekst": text,
            "postnummer": postnummer,
            "poststed": poststed,
            "kommunenummer": kommune,
            "kommunenavn": poststed,
            "representasjonspunkt": {"epsg": "EPSG:4258", "lat": 59.91, "lon": 10.75},
        }
        for text, postnummer, poststed, kommune in rows
    ]


def write_fixture_data(root: Path) -> Fixture:
    numbers = list(_numbers(20))
    active, deleted, removed, unknown, parent, lonely = numbers[:6]
    subunits = tuple(numbers[6:9])
    fillers = numbers[9:]
    actives = [
        _unit(active, "Fjordlys Testdata AS"),
        _unit(parent, "Morselskapet Testdata AS"),
        _unit(lonely, "Ensom Forening", "FLI"),
    ]
    actives += [_unit(n, f"Fyllstoff {i} Testdata AS") for i, n in enumerate(fillers)]
    units = [{"organisasjonsnummer": r["organisasjonsnummer"], "state": "active", "record": r}
             for r in actives]
    units.append(
        {
            "organisasjonsnummer": deleted,
            "state": "deleted",
            "record": {
                "organisasjonsnummer": deleted,
                "navn": "Borte Testdata AS",
                "organisasjonsform": {"kode": "AS", "beskrivelse": "Aksjeselskap", "_links": {}},
                "slettedato": "2025-03-04",
                "respons_klasse": "SlettetEnhet",
                "_links": _links(f"enheter/{deleted}"),
            },
        }
    )
    units.append(
        {
            "organisasjonsnummer": removed,
            "state": "removed",
            "record": {
                "organisasjonsnummer": removed,
                "slettedato": "2025-05-06",
                "_links": _links(f"enheter/{removed}"),
            },
        }
    )
    dagl = {"kode": "DAGL", "beskrivelse": "Daglig leder"}
    roles = {"rollegrupper": [{"type": dagl, "sistEndret": "2024-01-01", "roller": []}], "_links": {}}
    period = {"fraDato": "2025-01-01", "tilDato": "2025-12-31"}
    accounts = [{"id": 1, "regnskapstype": "SELSKAP", "regnskapsperiode": period, "valuta": "NOK"}]
    subunit_rows = [
        {
            "organisasjonsnummer": s,
            "overordnetEnhet": parent,
            "record": {"organisasjonsnummer": s, "navn": f"Avdeling {i}", "overordnetEnhet": parent},
        }
        for i, s in enumerate(subunits)
    ]
    updates = [
        {
            "oppdateringsid": FIRST_UPDATE_ID + i,
            "dato": f"2026-08-05T06:00:{i:02d}.000Z",
            "organisasjonsnummer": actives[i % len(actives)]["organisasjonsnummer"],
            "endringstype": "Endring",
        }
        for i in range(UPDATE_COUNT)
    ]
    _write_jsonl(root / "units.jsonl.gz", units)
    _write_jsonl(root / "roles.jsonl.gz", [{"organisasjonsnummer": parent, "body": roles}])
    _write_jsonl(root / "accounts.jsonl.gz", [{"organisasjonsnummer": parent, "body": accounts}])
    _write_jsonl(root / "subunits.jsonl.gz", subunit_rows)
    _write_jsonl(root / "addresses.jsonl.gz", _addresses())
    _write_jsonl(root / "homepages.jsonl.gz", _sites())
    _write_jsonl(root / "updates.jsonl.gz", updates)
    _write_dumps(root, actives)
    manifest = {
        "format": 1,
        "seed": 1,
        "companies": len(actives),
        "changes": UPDATE_COUNT,
        "etag": ETAG,
        "last_modified": LAST_MODIFIED,
        "first_update_id": FIRST_UPDATE_ID,
        "counts": {},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return Fixture(root, active, deleted, removed, unknown, parent, lonely, subunits)



@dataclass(frozen=True)
class Api:
    """One running service over the fixture data, with a kept-alive session."""

    service: RegistersService
    http: requests.Session
    data: Fixture

    @property
    def base(self) -> str:
        return self.service.base_url

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.base}{path}", **kwargs)

    def site(self, host: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.base}{path}", headers={"Host": host}, **kwargs)


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return write_fixture_data(tmp_path_factory.mktemp("registers-data"))


@pytest.fixture(scope="module")
def api(fixture: Fixture) -> Iterator[Api]:
    with RegistersService(fixture.data_dir) as service, requests.Session() as http:
        yield Api(service, http, fixture)


# --------------------------------------------------------------------------- Enhetsregisteret


def test_active_unit_answers_200_with_its_record(api: Api) -> None:
    response = api.get(f"{API}/enheter/{api.data.active}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["navn"] == "Fjordlys Testdata AS"


def test_deleted_unit_answers_200_with_slettedato(api: Api) -> None:
    response = api.get(f"{API}/enheter/{api.data.deleted}")
    assert response.status_code == 200
    assert response.json()["slettedato"] == "2025-03-04"
    assert response.json()["respons_klasse"] == "SlettetEnhet"


def test_removed_unit_answers_410_with_minimal_body(api: Api) -> None:
    response = api.get(f"{API}/enheter/{api.data.removed}")
    assert response.status_code == 410
    assert set(response.json()) == {"organisasjonsnummer", "slettedato", "_links"}


def test_unknown_unit_answers_404_with_empty_body(api: Api) -> None:
    response = api.get(f"{API}/enheter/{api.data.unknown}")
    assert response.status_code == 404
    assert response.content == b""


@pytest.mark.parametrize("path", ["12345", "abcdefghi", "1234567890", "12345/roller"])
def test_malformed_number_answers_400_with_json_error(api: Api, path: str) -> None:
    response = api.get(f"{API}/enheter/{path}")
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_roles_answer_200_or_404_empty_when_none(api: Api) -> None:
    found = api.get(f"{API}/enheter/{api.data.parent}/roller")
    missing = api.get(f"{API}/enheter/{api.data.lonely}/roller")
    assert found.json()["rollegrupper"][0]["type"]["kode"] == "DAGL"
    assert (missing.status_code, missing.content) == (404, b"")


def test_search_by_name_is_a_case_insensitive_substring(api: Api) -> None:
    body = api.get(f"{API}/enheter", params={"navn": "fjordLYS"}).json()
    assert [u["organisasjonsnummer"] for u in body["_embedded"]["enheter"]] == [api.data.active]
    assert body["page"] == {"size": 20, "totalElements": 1, "totalPages": 1, "number": 0}


def test_search_without_hits_has_no_embedded(api: Api) -> None:
    body = api.get(f"{API}/enheter", params={"navn": "finnes ikke"}).json()
    assert "_embedded" not in body
    assert body["page"]["totalElements"] == 0


def test_subunits_envelope_pages_through_the_hits(api: Api) -> None:
    first = api.get(f"{API}/underenheter", params={"overordnetEnhet": api.data.parent, "size": 2}).json()
    second = api.get(f"{API}/underenheter", params={"overordnetEnhet": api.data.parent, "size": 2, "page": 1})
    pages = [first, second.json()]
    seen = [u["organisasjonsnummer"] for body in pages for u in body["_embedded"]["underenheter"]]
    assert seen == list(api.data.subunits)
    assert first["page"] == {"size": 2, "totalElements": 3, "totalPages": 2, "number": 0}
    assert "next" in first["_links"] and "next" not in pages[1]["_links"]


def test_subunits_without_hits_have_no_embedded(api: Api) -> None:
    body = api.get(f"{API}/underenheter", params={"overordnetEnhet": api.data.lonely}).json()
    assert "_embedded" not in body
    assert body["page"] == {"size": 20, "totalElements": 0, "totalPages": 0, "number": 0}


@pytest.mark.parametrize("route", ["underenheter", "enheter", "oppdateringer/enheter"])
def test_deep_paging_answers_400(api: Api, route: str) -> None:
    response = api.get(f"{API}/{route}", params={"page": 100, "size": 100})
    assert response.status_code == 400


# --------------------------------------------------------------------------- change feed


def _feed(api: Api, **params: Any) -> list[dict[str, Any]]:
    body = api.get(f"{API}/oppdateringer/enheter", params=params).json()
    return body.get("_embedded", {}).get("oppdaterteEnheter", [])


def test_change_feed_pages_by_last_id_plus_one(api: Api) -> None:
    seen: list[int] = []
    while items := _feed(api, oppdateringsid=seen[-1] + 1 if seen else 0, size=7):
        seen += [item["oppdateringsid"] for item in items]
    assert seen == list(range(FIRST_UPDATE_ID, FIRST_UPDATE_ID + UPDATE_COUNT))


def test_change_feed_items_link_to_their_unit(api: Api) -> None:
    [item] = _feed(api, oppdateringsid=FIRST_UPDATE_ID + 3, size=1)
    assert item["oppdateringsid"] == FIRST_UPDATE_ID + 3
    assert item["_links"]["enhet"]["href"] == f"{api.base}{API}/enheter/{item['organisasjonsnummer']}"
    assert api.http.get(item["_links"]["enhet"]["href"]).status_code == 200


def test_change_feed_filters_by_dato(api: Api) -> None:
    items = _feed(api, dato="2026-08-05T06:00:25.000Z", size=100)
    expected = range(FIRST_UPDATE_ID + 25, FIRST_UPDATE_ID + UPDATE_COUNT)
    assert [item["oppdateringsid"] for item in items] == list(expected)


def test_change_feed_past_the_end_has_no_embedded(api: Api) -> None:
    body = api.get(f"{API}/oppdateringer/enheter", params={"oppdateringsid": 10**9}).json()
    assert "_embedded" not in body and body["page"]["totalElements"] == 0


# --------------------------------------------------------------------------- bulk dumps


def test_dump_head_carries_bare_etag_and_java_date(api: Api) -> None:
    response = api.http.head(f"{api.base}{API}/enheter/lastned", headers={"Accept": DUMP_V2})
    assert response.status_code == 200
    assert response.headers["ETag"] == ETAG
    assert response.headers["Last-Modified"] == LAST_MODIFIED
    size = (api.data.data_dir / "enheter.json.gz").stat().st_size
    assert int(response.headers["Content-Length"]) == size


@pytest.mark.parametrize("etag", [ETAG, f'"{ETAG}"'])
def test_dump_if_none_match_answers_304(api: Api, etag: str) -> None:
    response = api.get(f"{API}/enheter/lastned", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""


def test_dump_streams_byte_identical_gzip(api: Api) -> None:
    with api.get(f"{API}/enheter/lastned", headers={"Accept": DUMP_V2}, stream=True) as response:
        assert response.headers["Content-Type"] == DUMP_V2
        received = b"".join(response.iter_content(64 * 1024))
    assert received == (api.data.data_dir / "enheter.json.gz").read_bytes()
    assert json.loads(gzip.decompress(received))[0]["links"] == []


def test_dump_refuses_plain_json_with_406(api: Api) -> None:
    response = api.get(f"{API}/enheter/lastned", headers={"Accept": "application/json"})
    assert response.status_code == 406


def test_csv_dump_accepts_text_csv(api: Api) -> None:
    response = api.get(f"{API}/enheter/lastned/csv", headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert gzip.decompress(response.content).startswith(b'"organisasjonsnummer"')


# --------------------------------------------------------------------------- accounts and addresses


def test_accounts_answer_a_bare_array_or_404_empty(api: Api) -> None:
    found = api.get(f"/regnskapsregisteret/regnskap/{api.data.parent}")
    missing = api.get(f"/regnskapsregisteret/regnskap/{api.data.lonely}")
    assert isinstance(found.json(), list) and found.json()[0]["regnskapstype"] == "SELSKAP"
    assert (missing.status_code, missing.content) == (404, b"")


def _address_texts(api: Api, **params: Any) -> list[str]:
    body = api.get("/adresser/v1/sok", params=params).json()
    assert body["metadata"]["totaltAntallTreff"] == len(body["adresser"])
    assert body["metadata"]["asciiKompatibel"] is True
    return [a["adressetekst"] for a in body["adresser"]]


def test_address_search_matches_a_substring_of_the_street_address(api: Api) -> None:
    texts = _address_texts(api, sok="storgata 1", treffPerSide=10)
    assert texts[0] == "Storgata 1" and set(texts) == {"Storgata 1", "Storgata 12"}


def test_address_search_filters_by_postnummer(api: Api) -> None:
    assert _address_texts(api, sok="gata", postnummer="3001") == ["Lillestorgata 3"]


def test_address_search_accepts_address_postcode_and_place_in_one_string(api: Api) -> None:
    assert _address_texts(api, sok="Kongens gate 5, 7011 Trondheim") == ["Kongens gate 5"]


# --------------------------------------------------------------------------- home pages


def test_home_page_is_chosen_by_host_header(api: Api) -> None:
    response = api.site("www.ok-example.no", "/")
    assert response.status_code == 200 and "Velkommen" in response.text
    assert response.headers["Content-Type"].startswith("text/html")


def test_home_page_robots_txt_or_404_when_absent(api: Api) -> None:
    assert api.site("www.ok-example.no", "/robots.txt").text.startswith("User-agent: *")
    assert api.site("norobots.example.no", "/robots.txt").status_code == 404


def test_home_page_redirect_carries_location(api: Api) -> None:
    response = api.site("www.ok-example.no:80", "/old", allow_redirects=False)
    assert (response.status_code, response.headers["Location"]) == (301, "https://www.ok-example.no/")


def test_home_page_redirect_loop_never_ends(api: Api) -> None:
    with pytest.raises(requests.TooManyRedirects):
        api.site("www.loop-example.no", "/")


def test_huge_home_page_streams_more_than_five_megabytes(api: Api) -> None:
    response = api.site("www.huge-example.no", "/")
    assert len(response.content) == HUGE_BODY_BYTES > 5 * 1024 * 1024


@pytest.mark.parametrize("path", ["/", "/robots.txt"])
def test_missing_home_page_answers_404_for_everything(api: Api, path: str) -> None:
    assert api.site("www.missing-example.no", path).status_code == 404


def test_slow_home_page_outlasts_a_short_timeout(api: Api) -> None:
    with pytest.raises(requests.Timeout):
        api.site("www.slow-example.no", "/", timeout=0.3)


def test_unknown_host_answers_404_html(api: Api) -> None:
    response = api.site("www.nobody-here.no", "/")
    assert response.status_code == 404 and response.headers["Content-Type"].startswith("text/html")


# --------------------------------------------------------------------------- faults


def test_fault_429_carries_retry_after(registers_service: StartService, fixture: Fixture) -> None:
    service = registers_service(fixture.data_dir, Faults(rate_429=1.0, retry_after_s=7))
    response = requests.get(f"{service.base_url}{API}/enheter/{fixture.active}")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")


def test_fault_500_bursts_have_exact_length(registers_service: StartService, fixture: Fixture) -> None:
    burst = 3
    service = registers_service(fixture.data_dir, Faults(rate_500=0.08, burst=burst, seed=5))
    url = f"{service.base_url}/regnskapsregisteret/regnskap/{fixture.parent}"
    with requests.Session() as session:
        statuses = [session.get(url).status_code for _ in range(150)]
    runs = [len(run) for run in "".join("x" if s == 500 else "." for s in statuses).split(".") if run]
    # A burst is the triggering 500 plus `burst` more; a fresh trigger right after one chains them.
    assert runs and all(length % (burst + 1) == 0 for length in runs)
    assert burst + 1 in runs


def test_fault_500_body_is_a_spring_error(registers_service: StartService, fixture: Fixture) -> None:
    service = registers_service(fixture.data_dir, Faults(rate_500=1.0))
    path = f"/regnskapsregisteret/regnskap/{fixture.parent}"
    body = requests.get(f"{service.base_url}{path}").json()
    assert (body["status"], body["error"], body["path"]) == (500, "Internal Server Error", path)


def test_fault_malformed_answers_200_that_fails_to_parse(
    registers_service: StartService, fixture: Fixture
) -> None:
    service = registers_service(fixture.data_dir, Faults(rate_malformed=1.0))
    response = requests.get(f"{service.base_url}{API}/enheter/{fixture.active}")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_fault_reset_raises_connection_error(registers_service: StartService, fixture: Fixture) -> None:
    service = registers_service(fixture.data_dir, Faults(rate_reset=1.0))
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{service.base_url}{API}/enheter/{fixture.active}")
    assert service.stats()["by_status"] == {"reset": 1}


def test_fault_timeout_outlasts_a_short_client_timeout(
    registers_service: StartService, fixture: Fixture
) -> None:
    service = registers_service(fixture.data_dir, Faults(rate_timeout=1.0, timeout_sleep_s=10))
    started = time.perf_counter()
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{service.base_url}{API}/enheter/{fixture.active}", timeout=0.3)
    assert time.perf_counter() - started < 5


def test_fault_latency_delays_each_answer(registers_service: StartService, fixture: Fixture) -> None:
    service = registers_service(fixture.data_dir, Faults(latency_ms=150, jitter_ms=50))
    started = time.perf_counter()
    response = requests.get(f"{service.base_url}{API}/enheter/{fixture.active}")
    assert response.status_code == 200 and time.perf_counter() - started >= 0.15


def test_faults_spare_control_routes_and_dumps(registers_service: StartService, fixture: Fixture) -> None:
    service = registers_service(fixture.data_dir, Faults(rate_reset=1.0))
    assert requests.get(f"{service.base_url}/_control/faults").json()["rate_reset"] == 1.0
    assert requests.get(f"{service.base_url}{API}/enheter/lastned").status_code == 200


def _status_walk(service: RegistersService, paths: list[str], parallel: bool) -> dict[str, list[str]]:
    """Each path walked 25 times by one client in order; 'bad' marks bodies that fail to parse."""
    results: dict[str, list[str]] = {}

    def walk(path: str) -> None:
        seen = []
        with requests.Session() as session:
            for _ in range(25):
                response = session.get(f"{service.base_url}{path}")
                try:
                    response.json()
                    seen.append(str(response.status_code))
                except ValueError:
                    seen.append(f"{response.status_code}-bad")
        results[path] = seen

    threads = [threading.Thread(target=walk, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
        if not parallel:
            thread.join()
    for thread in threads:
        thread.join()
    return results


def test_fault_decisions_depend_only_on_seed_and_path(
    registers_service: StartService, fixture: Fixture
) -> None:
    faults = Faults(seed=11, rate_500=0.15, burst=1, rate_429=0.15, rate_malformed=0.1)
    reseeded = Faults(**{**faults.to_dict(), "seed": 12})
    paths = [f"{API}/enheter/{n}" for n in (fixture.active, fixture.parent, fixture.lonely)]
    paths.append(f"/regnskapsregisteret/regnskap/{fixture.parent}")
    sequential = _status_walk(registers_service(fixture.data_dir, faults), paths, parallel=False)
    parallel = _status_walk(registers_service(fixture.data_dir, faults), paths, parallel=True)
    other_seed = _status_walk(registers_service(fixture.data_dir, reseeded), paths, parallel=False)
    assert sequential == parallel
    assert sequential != other_seed
    assert {"200", "429", "500", "200-bad"} <= {s for seen in sequential.values() for s in seen}


def test_control_routes_replace_faults_count_and_reset(
    registers_service: StartService, fixture: Fixture
) -> None:
    service = registers_service(fixture.data_dir)
    base = service.base_url
    assert requests.post(f"{base}/_control/faults", json={"rate_429": 1.0}).json()["rate_429"] == 1.0
    assert requests.get(f"{base}{API}/enheter/{fixture.active}").status_code == 429
    assert requests.post(f"{base}/_control/faults", json={"no_such": 1}).status_code == 400
    stats = requests.get(f"{base}/_control/stats").json()
    assert stats["by_route_status"] == {"enhet": {"429": 1}}
    requests.post(f"{base}/_control/reset")
    assert service.stats()["requests"] == 0


# --------------------------------------------------------------------------- load


def test_two_hundred_concurrent_requests_all_succeed(api: Api) -> None:
    count = 200
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()
    url = f"{api.base}{API}/enheter/{api.data.active}"

    def one() -> None:
        barrier.wait()
        status = requests.get(url, timeout=30).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * count


def test_five_hundred_requests_on_one_kept_alive_session_are_quick(api: Api) -> None:
    url = f"{api.base}{API}/enheter/{api.data.active}"
    started = time.perf_counter()
    with requests.Session() as session:
        statuses = {session.get(url).status_code for _ in range(500)}
    assert statuses == {200}
    assert time.perf_counter() - started < 10

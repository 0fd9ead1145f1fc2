"""The shared HTTP layer and the register clients, against a real local HTTP server.

The server below injects each fault for real (a reset is an RST on the wire, a timeout is a
handler that sleeps), so the retry rules are tested the way they meet the registers.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from enrichment_pipeline.registers import clients
from enrichment_pipeline.registers.clients import (
    OUTCOMES,
    BrregClient,
    GeonorgeClient,
    brreg_base_url,
    geonorge_base_url,
    outcome_of,
)
from enrichment_pipeline.registers.http import (
    DUMP_ACCEPT,
    USER_AGENT,
    Fetched,
    HttpClient,
    HttpSettings,
    map_concurrent,
    parse_retry_after,
)

FAST = HttpSettings(timeout_s=2.0, retries=2, backoff_base_s=0.01, backoff_max_s=5.0, rate_limit_per_s=0)
DUMP_BODY = gzip.compress(random.Random(7).randbytes(3 << 20), compresslevel=1)
DUMP_ETAG = "5f3c0a9e"
ACTIVE, DELETED, REMOVED = "910747711", "889640782", "923609016"
UNITS: dict[str, tuple[int, Any]] = {
    ACTIVE: (200, {"organisasjonsnummer": ACTIVE, "navn": "TESTBEDRIFT AS", "respons_klasse": "Enhet"}),
    DELETED: (200, {"organisasjonsnummer": DELETED, "slettedato": "2024-03-01",
                    "respons_klasse": "SlettetEnhet"}),
    REMOVED: (410, {"organisasjonsnummer": REMOVED, "slettedato": "2023-01-01", "_links": {}}),
}
SUB_UNIT_COUNTS: dict[str, int] = {"999999999": 250, "888888888": 0, "777777777": 1_000_000}


class Recorder:
    """What the server saw: hits per path, arrival times, and how many ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits: Counter[str] = Counter()
        self.times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.queries: list[dict[str, list[str]]] = []

    def hit(self, path: str) -> int:
        with self.lock:
            self.hits[path] += 1
            self.times.append(time.monotonic())
            return self.hits[path]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid the 40 ms stall
    recorder: Recorder
    query: dict[str, list[str]]
    segments: list[str]
    count: int
    head: bool

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        self.count = self.recorder.hit(parts.path)
        self.segments = parts.path.strip("/").split("/")
        self.head = head
        route = getattr(self, "route_" + self.segments[0].replace("-", "_"), None)
        route() if route is not None else self.send_body(404, b"")

    def route_ok(self) -> None:
        self.send_json(200, {"ok": True})

    def route_status(self) -> None:  # /status/<code>
        code = int(self.segments[1])
        self.send_json(code, {"status": code}) if code == 410 else self.send_body(code, b"")

    def route_flaky(self) -> None:  # /flaky/<key>/<failures>/<status or 'malformed'>
        failures, kind = int(self.segments[2]), self.segments[3]
        if self.count > failures:
            self.send_json(200, {"ok": True, "attempt": self.count})
        elif kind == "malformed":
            self.send_body(200, b'{"a": ', "application/json")
        else:
            self.send_json(int(kind), {"status": int(kind), "error": "Internal"})

    def route_retry_after(self) -> None:  # /retry-after/<key>/<seconds>
        if self.count == 1:
            self.send_json(429, {"error": "slow down"}, {"Retry-After": self.segments[2]})
        else:
            self.send_json(200, {"ok": True})

    def route_slow(self) -> None:  # /slow/<seconds>
        time.sleep(float(self.segments[1]))
        self.send_json(200, {"ok": True})

    def route_reset(self) -> None:
        # SO_LINGER 0 turns close() into an RST: the client sees a real connection reset.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def route_concurrent(self) -> None:
        with self.recorder.lock:
            self.recorder.in_flight += 1
            self.recorder.max_in_flight = max(self.recorder.max_in_flight, self.recorder.in_flight)
        time.sleep(0.15)
        with self.recorder.lock:
            self.recorder.in_flight -= 1
        self.send_json(200, {"ok": True})

    def route_echo(self) -> None:
        self.send_json(200, {"ua": self.headers.get("User-Agent"), "accept": self.headers.get("Accept")})

    def route_regnskapsregisteret(self) -> None:
        self.send_json(500, {"timestamp": "2026-08-05T04:30:57.000+00:00", "status": 500,
                             "error": "Internal Server Error", "path": self.path})

    def route_adresser(self) -> None:
        self.recorder.queries.append(self.query)
        self.send_json(200, {"metadata": {"side": 0}, "adresser": []})

    def route_enhetsregisteret(self) -> None:
        self.brreg(self.segments, self.query, self.head)

    def brreg(self, segments: list[str], query: dict[str, list[str]], head: bool) -> None:
        if segments[2:4] == ["enheter", "lastned"]:
            self.dump(head)
        elif segments[2] == "enheter" and len(segments) == 4:
            orgnr = segments[3]
            if not orgnr.isdigit() or len(orgnr) != 9:
                self.send_json(400, {"status": 400, "error": "Bad Request"})
            elif orgnr in UNITS:
                self.send_json(*UNITS[orgnr])
            else:
                self.send_body(404, b"")
        elif segments[2] == "oppdateringer":
            self.recorder.queries.append(query)
            items = [{"oppdateringsid": int(query["oppdateringsid"][0]), "organisasjonsnummer": ACTIVE,
                      "endringstype": "Endring"}]
            self.send_json(200, {"_embedded": {"oppdaterteEnheter": items}, "page": {"totalPages": 1}})
        elif segments[2] == "underenheter":
            self.recorder.queries.append(query)
            self.sub_units(query)
        else:
            self.send_body(404, b"")

    def sub_units(self, query: dict[str, list[str]]) -> None:
        size, page = int(query["size"][0]), int(query["page"][0])
        if (page + 1) * size > 10_000:
            self.send_json(400, {"status": 400, "error": "Bad Request"})
            return
        total = SUB_UNIT_COUNTS[query["overordnetEnhet"][0]]
        start = page * size
        body: dict[str, Any] = {"page": {"size": size, "totalElements": total,
                                         "totalPages": -(-total // size), "number": page}}
        if total:
            body["_embedded"] = {"underenheter": [{"organisasjonsnummer": f"{n:09d}"}
                                                  for n in range(start, min(total, start + size))]}
        self.send_json(200, body)

    def dump(self, head: bool) -> None:
        if self.headers.get("Accept") != DUMP_ACCEPT:
            self.send_body(406, b"")
        elif self.headers.get("If-None-Match") == DUMP_ETAG:
            self.send_body(304, b"", extra={"ETag": DUMP_ETAG})
        else:
            extra = {"ETag": DUMP_ETAG, "Last-Modified": "Wed Aug 05 04:30:57 CEST 2026"}
            self.send_body(200, b"" if head else DUMP_BODY, "application/octet-stream", extra,
                           length=len(DUMP_BODY))

    def send_json(self, status: int, body: Any, extra: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(body).encode(), "application/json", extra)

    def send_body(self, status: int, body: bytes, content_type: str = "text/plain",
                  extra: dict[str, str] | None = None, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)


class LocalServer:
    def __init__(self) -> None:
        self.recorder = Recorder()
        handler = type("BoundHandler", (Handler,), {"recorder": self.recorder})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def hits(self, path: str) -> int:
        with self.recorder.lock:
            return self.recorder.hits[path]


@pytest.fixture()
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    local.thread.start()
    yield local
    local.httpd.shutdown()
    local.httpd.server_close()


@pytest.fixture()
def http() -> Iterator[HttpClient]:
    client = HttpClient(FAST, seed=1)
    yield client
    client.close()


def test_429_waits_for_retry_after_then_succeeds(server: LocalServer, http: HttpClient) -> None:
    fetched = http.get_json(f"{server.url}/retry-after/a/1")
    assert (fetched.status, fetched.error, fetched.attempts) == (200, None, 2)
    # Our own backoff would be ~10 ms here; the second second is the server's Retry-After.
    assert 0.9 <= fetched.latency_s < 2.5


def test_retry_after_is_capped_at_backoff_max(server: LocalServer) -> None:
    settings = HttpSettings(timeout_s=2.0, retries=1, backoff_base_s=0.01, backoff_max_s=0.2,
                            rate_limit_per_s=0)
    with HttpClient(settings) as http:
        fetched = http.get_json(f"{server.url}/retry-after/b/3600")
    assert fetched.status == 200 and fetched.latency_s < 1.5


def test_retry_after_accepts_an_http_date() -> None:
    now = datetime(2026, 8, 5, 4, 30, tzinfo=timezone.utc)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("soon") is None


def test_500_then_200_succeeds_on_the_second_attempt(server: LocalServer, http: HttpClient) -> None:
    fetched = http.get_json(f"{server.url}/flaky/c/1/500")
    assert (fetched.status, fetched.error, fetched.attempts) == (200, None, 2)
    assert fetched.body == {"ok": True, "attempt": 2}


def test_persistent_500_gives_an_error_after_all_attempts(server: LocalServer, http: HttpClient) -> None:
    fetched = http.get_json(f"{server.url}/flaky/d/99/500")
    assert fetched.error == "HTTP 500 after 3 attempts"
    assert fetched.status == 500 and fetched.attempts == 3
    assert fetched.body == {"status": 500, "error": "Internal"}
    assert server.hits("/flaky/d/99/500") == 3


def test_slow_answer_times_out_after_retries(server: LocalServer) -> None:
    settings = HttpSettings(timeout_s=0.3, retries=1, backoff_base_s=0.01, rate_limit_per_s=0)
    with HttpClient(settings) as http:
        fetched = http.get_json(f"{server.url}/slow/1.5")
    assert fetched.error == "timeout after 2 attempts"
    assert fetched.status is None and fetched.attempts == 2
    assert fetched.latency_s < 1.5


def test_connection_reset_is_retried_then_reported(server: LocalServer, http: HttpClient) -> None:
    fetched = http.get_json(f"{server.url}/reset")
    assert fetched.error == "connection reset after 3 attempts"
    assert fetched.status is None
    assert server.hits("/reset") == 3


def test_malformed_json_is_retried_then_reported(server: LocalServer, http: HttpClient) -> None:
    fetched = http.get_json(f"{server.url}/flaky/e/99/malformed")
    assert fetched.error == "malformed JSON after 3 attempts"
    assert fetched.status == 200 and fetched.body is None
    assert fetched.text == '{"a": '


def test_malformed_json_once_then_valid_succeeds(server: LocalServer, http: HttpClient) -> None:
    fetched = http.get_json(f"{server.url}/flaky/f/1/malformed")
    assert (fetched.error, fetched.attempts, fetched.body["ok"]) == (None, 2, True)


@pytest.mark.parametrize(("code", "error"), [(404, None), (410, None), (400, "HTTP 400 after 1 attempt")])
def test_answers_that_must_not_be_retried(
    server: LocalServer, http: HttpClient, code: int, error: str | None
) -> None:
    fetched = http.get_json(f"{server.url}/status/{code}")
    assert (fetched.status, fetched.error, fetched.attempts) == (code, error, 1)
    assert server.hits(f"/status/{code}") == 1


def test_rate_limiter_caps_requests_per_second(server: LocalServer) -> None:
    settings = HttpSettings(timeout_s=2.0, retries=0, rate_limit_per_s=20, max_in_flight=8)
    with HttpClient(settings) as http:
        map_concurrent(lambda _: http.get_json(f"{server.url}/ok"), range(30), max_in_flight=8)
    times = server.recorder.times
    first_second = [t for t in times if t - times[0] <= 1.0]
    assert 15 <= len(first_second) <= 25


def test_max_in_flight_bounds_concurrent_requests(server: LocalServer) -> None:
    settings = HttpSettings(timeout_s=2.0, retries=0, rate_limit_per_s=0, max_in_flight=3)
    with HttpClient(settings) as http:
        results = map_concurrent(
            lambda _: http.get_json(f"{server.url}/concurrent"), range(12), max_in_flight=12
        )
    assert all(r.status == 200 for r in results)
    assert 2 <= server.recorder.max_in_flight <= 3


def test_sessions_are_reused_across_batches_of_worker_threads(server: LocalServer) -> None:
    settings = HttpSettings(timeout_s=2.0, retries=0, rate_limit_per_s=0, max_in_flight=4)
    with HttpClient(settings) as http:
        for _ in range(5):  # every batch runs on fresh worker threads
            map_concurrent(lambda _: http.get_json(f"{server.url}/ok"), range(20), max_in_flight=8)
        assert 1 <= http.stats()["sessions"] <= 4


def test_honest_user_agent_and_accept_are_sent(server: LocalServer, http: HttpClient) -> None:
    fetched = http.get_json(f"{server.url}/echo")
    assert fetched.body == {"ua": USER_AGENT, "accept": "application/json"}
    assert "enrichment-pipeline" in USER_AGENT


def test_stats_count_requests_retries_and_statuses(server: LocalServer, http: HttpClient) -> None:
    http.get_json(f"{server.url}/flaky/g/1/503")
    http.get_json(f"{server.url}/status/404")
    stats = http.stats()
    assert (stats["calls"], stats["requests"], stats["retries"], stats["errors"]) == (2, 3, 1, 0)
    assert stats["statuses"] == {"503": 1, "200": 1, "404": 1}
    assert stats["latency_p50_s"] is not None and stats["latency_p95_s"] >= stats["latency_p50_s"]


def test_map_concurrent_preserves_order() -> None:
    def slow_square(n: int) -> int:
        time.sleep(random.uniform(0, 0.01))
        return n * n

    assert map_concurrent(slow_square, list(range(50)), max_in_flight=8) == [n * n for n in range(50)]
    assert map_concurrent(slow_square, [], max_in_flight=8) == []


def test_stream_download_streams_the_gzip_dump_in_chunks(server: LocalServer, http: HttpClient) -> None:
    brreg = BrregClient(server.url, http)
    with brreg.download_dump("json", etag=None) as download:
        chunks = list(download.chunks)
    assert (download.status, download.etag) == (200, DUMP_ETAG)
    assert download.last_modified == "Wed Aug 05 04:30:57 CEST 2026"
    assert b"".join(chunks) == DUMP_BODY and len(chunks) >= 3
    assert max(len(c) for c in chunks) <= 1 << 20


def test_stream_download_with_current_etag_is_304_without_body(server: LocalServer, http: HttpClient) -> None:
    brreg = BrregClient(server.url, http)
    with http.stream_download(brreg.dump_url(), etag=DUMP_ETAG) as download:
        assert download.status == 304
        assert list(download.chunks) == []


def test_head_reads_the_dump_etag(server: LocalServer, http: HttpClient) -> None:
    fetched = BrregClient(server.url, http).dump_head("json")
    assert fetched.status == 200 and fetched.headers["etag"] == DUMP_ETAG


def test_dump_with_a_wrong_accept_type_is_an_error_not_a_stream(
    server: LocalServer, http: HttpClient
) -> None:
    url = BrregClient(server.url, http).dump_url()
    with http.stream_download(url, accept="application/json") as download:
        assert (download.status, download.error) == (406, "HTTP 406 after 1 attempt")
        assert list(download.chunks) == []


@pytest.mark.parametrize(
    ("orgnr", "outcome"),
    [(ACTIVE, "ok"), (DELETED, "deleted"), (REMOVED, "gone"), ("974760673", "not_found"), ("12345", "error")],
)
def test_unit_lookup_outcomes(server: LocalServer, http: HttpClient, orgnr: str, outcome: str) -> None:
    fetched = BrregClient(server.url, http).unit(orgnr)
    assert outcome_of(fetched) == outcome
    assert fetched.attempts == 1


def test_accounts_spring_500_is_an_error_after_retries(server: LocalServer, http: HttpClient) -> None:
    fetched = BrregClient(server.url, http).accounts(ACTIVE)
    assert outcome_of(fetched) == "error"
    assert fetched.error == "HTTP 500 after 3 attempts" and fetched.body["error"] == "Internal Server Error"


@pytest.mark.parametrize(
    ("fetched", "outcome"),
    [
        (Fetched("u", 200, {"navn": "X"}, None, None, 1, 0.0, {}), "ok"),
        (Fetched("u", 200, [{"id": 1}], None, None, 1, 0.0, {}), "ok"),
        (Fetched("u", 200, {"slettedato": "2024-01-01"}, None, None, 1, 0.0, {}), "deleted"),
        (Fetched("u", 404, None, "", None, 1, 0.0, {}), "not_found"),
        (Fetched("u", 410, {"slettedato": "2024-01-01"}, None, None, 1, 0.0, {}), "gone"),
        (Fetched("u", 406, None, "", None, 1, 0.0, {}), "error"),
        (Fetched("u", None, None, None, "timeout after 5 attempts", 5, 9.0, {}), "error"),
        (Fetched("u", 200, None, "{", "malformed JSON after 5 attempts", 5, 9.0, {}), "error"),
    ],
)
def test_outcome_of_each_case(fetched: Fetched, outcome: str) -> None:
    assert outcome_of(fetched) == outcome
    assert outcome in OUTCOMES


def test_sub_units_pages_are_combined(server: LocalServer, http: HttpClient) -> None:
    fetched = BrregClient(server.url, http).sub_units("999999999")
    assert fetched.error is None and fetched.status == 200
    assert len(fetched.body) == 250 and fetched.body[-1]["organisasjonsnummer"] == f"{249:09d}"
    assert [q["page"] for q in server.recorder.queries] == [["0"], ["1"], ["2"]]
    assert all(q["size"] == ["100"] for q in server.recorder.queries)


def test_sub_units_without_embedded_is_an_empty_list(server: LocalServer, http: HttpClient) -> None:
    fetched = BrregClient(server.url, http).sub_units("888888888")
    assert (fetched.body, fetched.attempts, outcome_of(fetched)) == ([], 1, "ok")


def test_sub_units_stop_at_the_deep_paging_limit(server: LocalServer, http: HttpClient) -> None:
    fetched = BrregClient(server.url, http).sub_units("777777777")
    assert fetched.error is None and len(fetched.body) == 10_000
    assert len(server.recorder.queries) == 100


def test_updates_and_address_search_send_their_parameters(server: LocalServer, http: HttpClient) -> None:
    GeonorgeClient(server.url, http).search("Storgata 1", postnummer="0155", per_page=5)
    expected = {"sok": ["Storgata 1"], "postnummer": ["0155"], "treffPerSide": ["5"]}
    assert server.recorder.queries[-1] == expected
    updates = BrregClient(server.url, http).updates(25_000_000, size=10)
    assert server.recorder.queries[-1] == {"oppdateringsid": ["25000000"], "size": ["10"], "page": ["0"]}
    assert clients.embedded(updates.body, "oppdaterteEnheter")[0]["oppdateringsid"] == 25_000_000


def test_base_urls_are_read_from_the_environment_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRREG_API_URL", raising=False)
    monkeypatch.delenv("GEONORGE_API_URL", raising=False)
    assert (brreg_base_url(), geonorge_base_url()) == ("https://data.brreg.no", "https://ws.geonorge.no")
    monkeypatch.setenv("BRREG_API_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv("GEONORGE_API_URL", "http://127.0.0.1:8766")
    assert clients.brreg_base_url() == "http://127.0.0.1:8765"
    assert clients.geonorge_base_url() == "http://127.0.0.1:8766"


def test_dump_urls() -> None:
    brreg = BrregClient("https://data.brreg.no/")
    assert brreg.dump_url() == "https://data.brreg.no/enhetsregisteret/api/enheter/lastned"
    assert brreg.dump_url("csv") == "https://data.brreg.no/enhetsregisteret/api/enheter/lastned/csv"
    with pytest.raises(ValueError):
        brreg.dump_url("xml")
    brreg.close()

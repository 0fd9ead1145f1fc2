"""The local registers service: the public registers' real paths, served from a data directory.

One threaded HTTP/1.1 server answers, under one base URL, what data.brreg.no
(Enhetsregisteret, Regnskapsregisteret), ws.geonorge.no (Kartverket addresses) and the
companies' home pages would answer, quirks included (see /work/shared/REGISTERS.md and
docs/data-layout.md). Home pages are chosen by the Host header, everything else by path.
Faults (latency, 429, 500 bursts, timeouts, malformed bodies, resets) are injected
deterministically by `faults.FaultPlan`.

Speed matters because the whole pipeline is tested against this server: each response is
written with one send on a TCP_NODELAY socket, since separate header and body writes on a
kept-alive connection stall on Nagle plus delayed ACK (~23 requests/s per connection).
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import gzip
import ipaddress
import json
import logging
import re
import signal
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from enrichment_pipeline.registers.faults import NO_FAULT, Decision, FaultPlan, Faults

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json"
HAL_TYPE = "application/json"  # the real one may say hal+json; plain JSON keeps naive clients happy
HTML_TYPE = "text/html; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
DUMP_JSON_TYPE = "application/vnd.brreg.enhetsregisteret.enhet.v2+gzip;charset=UTF-8"
DUMP_CSV_TYPE = "application/vnd.brreg.enhetsregisteret.enhet+gzip;charset=UTF-8"
DUMP_JSON_ACCEPTS = frozenset(
    {
        "application/vnd.brreg.enhetsregisteret.enhet.v2+gzip",
        "application/vnd.brreg.enhetsregisteret.enhet.v1+gzip",
    }
)
DUMP_CSV_ACCEPTS = frozenset({"text/csv", "application/vnd.brreg.enhetsregisteret.enhet+gzip"})

ENHETSREGISTERET = "/enhetsregisteret/api"
PAGING_WINDOW = 10_000  # brreg answers 400 when (page + 1) * size passes this
DEFAULT_PAGE_SIZE = 20
ADDRESS_PAGE_SIZE = 10
ADDRESS_MAX_PAGE_SIZE = 1000
STREAM_CHUNK_BYTES = 256 * 1024
HUGE_BODY_BYTES = 6 * 1024 * 1024  # above the 5 MB cap clients are asked to enforce
IDLE_CONNECTION_TIMEOUT_S = 300.0
DUMP_ROUTES = frozenset({"lastned", "lastned_csv"})

_ORGNR_LINE = re.compile(rb'\A\{\s*"organisasjonsnummer"\s*:\s*"([^"\\]*)"')
_SUBUNIT_LINE = re.compile(
    rb'\A\{\s*"organisasjonsnummer"\s*:\s*"([^"\\]*)"\s*,\s*"overordnetEnhet"\s*:\s*"([^"\\]*)"'
)
_NINE_DIGITS = re.compile(r"\A[0-9]{9}\Z")
_DATE_PREFIX = re.compile(r"\A\d{4}-\d{2}-\d{2}")
_STATE_STATUS = {"active": 200, "deleted": 200, "removed": 410}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Update:
    oppdateringsid: int
    dato: str
    organisasjonsnummer: str
    endringstype: str
    endringer: Any


@dataclass(frozen=True)
class Address:
    haystack: str  # "adressetekst postnummer poststed", lower case, for token matching
    text: str  # adressetekst, lower case
    postnummer: str
    kommunenummer: str
    raw: bytes


@dataclass(frozen=True)
class Site:
    host: str
    pages: dict[str, dict[str, Any]]
    robots: str | None
    behaviour: str


@dataclass(frozen=True)
class DumpFile:
    path: Path
    etag: str
    last_modified: str
    download_name: str


@dataclass(frozen=True)
class _SearchRow:
    orgnr: str
    navn: str
    organisasjonsform: str
    kommunenummer: str


def _gz_lines(path: Path) -> Iterator[bytes]:
    """Non-empty lines of a gzip JSONL file; an absent file reads as empty."""
    if not path.exists():
        logger.info("%s is absent; serving it as empty", path.name)
        return
    with gzip.open(path, "rb") as handle:
        for line in handle:
            line = line.strip()
            if line:
                yield line


def _orgnr_of(line: bytes) -> str:
    # The contract writes the key first; the regex spares a full parse of millions of lines.
    match = _ORGNR_LINE.match(line)
    return match.group(1).decode() if match else str(json.loads(line)["organisasjonsnummer"])


def _keyed_lines(path: Path) -> dict[str, bytes]:
    return {_orgnr_of(line): line for line in _gz_lines(path)}


def _subunit_lines(path: Path) -> tuple[dict[str, bytes], dict[str, list[str]]]:
    lines: dict[str, bytes] = {}
    by_parent: dict[str, list[str]] = {}
    for line in _gz_lines(path):
        match = _SUBUNIT_LINE.match(line)
        if match:
            orgnr, parent = match.group(1).decode(), match.group(2).decode()
        else:
            doc = json.loads(line)
            orgnr, parent = str(doc["organisasjonsnummer"]), str(doc.get("overordnetEnhet") or "")
        lines[orgnr] = line
        by_parent.setdefault(parent, []).append(orgnr)
    return lines, by_parent


def _load_updates(path: Path) -> list[Update]:
    updates = []
    for line in _gz_lines(path):
        doc = json.loads(line)
        updates.append(
            Update(
                oppdateringsid=int(doc["oppdateringsid"]),
                dato=str(doc["dato"]),
                organisasjonsnummer=str(doc["organisasjonsnummer"]),
                endringstype=str(doc["endringstype"]),
                endringer=doc.get("endringer"),
            )
        )
    updates.sort(key=lambda u: u.oppdateringsid)
    return updates


def _load_addresses(path: Path) -> list[Address]:
    addresses = []
    for line in _gz_lines(path):
        doc = json.loads(line)
        text = str(doc.get("adressetekst") or "")
        haystack = f"{text} {doc.get('postnummer') or ''} {doc.get('poststed') or ''}".lower()
        addresses.append(
            Address(
                haystack=haystack,
                text=text.lower(),
                postnummer=str(doc.get("postnummer") or ""),
                kommunenummer=str(doc.get("kommunenummer") or ""),
                raw=line,
            )
        )
    return addresses


def _load_sites(path: Path) -> dict[str, Site]:
    sites = {}
    for line in _gz_lines(path):
        doc = json.loads(line)
        host = str(doc["host"]).lower().rstrip(".")
        sites[host] = Site(
            host=host,
            pages=dict(doc.get("pages") or {}),
            robots=doc.get("robots"),
            behaviour=str(doc.get("behaviour") or "ok"),
        )
    return sites


def _java_date(epoch_s: float) -> str:
    """Java Date.toString() form, as brreg's Last-Modified uses instead of an HTTP date."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(epoch_s))


def _dump_file(path: Path, manifest: dict[str, Any], download_name: str) -> DumpFile | None:
    if not path.exists():
        return None
    stat = path.stat()
    etag = str(manifest.get("etag") or f"{stat.st_size:x}{int(stat.st_mtime):x}")
    last_modified = str(manifest.get("last_modified") or _java_date(stat.st_mtime))
    return DumpFile(path=path, etag=etag, last_modified=last_modified, download_name=download_name)


class RegisterData:
    """The data directory in memory: raw JSON lines keyed by organisation number.

    Lines stay bytes and are parsed per request: parsed dicts for a million units would
    cost gigabytes, while parsing one line per answer costs microseconds.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        manifest_path = data_dir / "manifest.json"
        self.manifest: dict[str, Any] = {}
        if manifest_path.exists():
            self.manifest = json.loads(manifest_path.read_text())
        self.units = _keyed_lines(data_dir / "units.jsonl.gz")
        self.roles = _keyed_lines(data_dir / "roles.jsonl.gz")
        self.accounts = _keyed_lines(data_dir / "accounts.jsonl.gz")
        self.subunits, self.subunits_by_parent = _subunit_lines(data_dir / "subunits.jsonl.gz")
        self.updates = _load_updates(data_dir / "updates.jsonl.gz")
        # Bisecting on dato is only right when dates rise with ids, as they do upstream.
        self.datos_sorted = all(a.dato <= b.dato for a, b in zip(self.updates, self.updates[1:]))
        self.addresses = _load_addresses(data_dir / "addresses.jsonl.gz")
        self.addresses_by_postnummer = _bucket(self.addresses, lambda a: a.postnummer)
        self.addresses_by_kommune = _bucket(self.addresses, lambda a: a.kommunenummer)
        self.sites = _load_sites(data_dir / "homepages.jsonl.gz")
        self.dump_json = _dump_file(data_dir / "enheter.json.gz", self.manifest, "enheter_alle.json.gz")
        self.dump_csv = _dump_file(data_dir / "enheter.csv.gz", self.manifest, "enheter_alle.csv.gz")
        self._search_rows: list[_SearchRow] | None = None
        self._search_lock = threading.Lock()

    @classmethod
    def load(cls, data_dir: Path) -> RegisterData:
        if not data_dir.is_dir():
            raise FileNotFoundError(f"registers data directory {data_dir} does not exist")
        started = time.perf_counter()
        data = cls(data_dir)
        logger.info(
            "loaded %d units, %d sub-units, %d updates, %d addresses, %d sites from %s in %.2f s",
            len(data.units),
            len(data.subunits),
            len(data.updates),
            len(data.addresses),
            len(data.sites),
            data_dir,
            time.perf_counter() - started,
        )
        return data

    def unit(self, orgnr: str) -> tuple[str, Any] | None:
        """(state, record) for a known number."""
        line = self.units.get(orgnr)
        if line is None:
            return None
        doc = json.loads(line)
        return str(doc.get("state") or "active"), doc["record"]

    def subunit_record(self, orgnr: str) -> Any:
        return json.loads(self.subunits[orgnr])["record"]

    def body_of(self, table: dict[str, bytes], orgnr: str) -> Any:
        line = table.get(orgnr)
        return None if line is None else json.loads(line)["body"]

    def search_rows(self) -> list[_SearchRow]:
        # Built on the first search only: most runs never search, and it parses every unit.
        with self._search_lock:
            if self._search_rows is None:
                self._search_rows = [row for row in map(self._search_row, self.units.values()) if row]
            return self._search_rows

    @staticmethod
    def _search_row(line: bytes) -> _SearchRow | None:
        doc = json.loads(line)
        if doc.get("state", "active") != "active":
            return None
        record = doc["record"]
        return _SearchRow(
            orgnr=str(record.get("organisasjonsnummer") or doc["organisasjonsnummer"]),
            navn=str(record.get("navn") or "").lower(),
            organisasjonsform=str((record.get("organisasjonsform") or {}).get("kode") or ""),
            kommunenummer=str((record.get("forretningsadresse") or {}).get("kommunenummer") or ""),
        )


def _bucket(addresses: list[Address], key: Callable[[Address], str]) -> dict[str, list[Address]]:
    buckets: dict[str, list[Address]] = {}
    for address in addresses:
        buckets.setdefault(key(address), []).append(address)
    return buckets


# --------------------------------------------------------------------------- responses

Stream = Callable[[], Generator[bytes, None, None]]


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    # A streamed body: opened only when sent, so HEAD never touches the file.
    stream: Stream | None = None
    content_length: int = 0  # of the streamed body; a plain body is measured

    @property
    def length(self) -> int:
        return self.content_length if self.stream is not None else len(self.body)


class BadRequest(Exception):
    """A parameter the real register would refuse with 400."""


@dataclass(frozen=True)
class RequestContext:
    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    base: str  # scheme and authority the client used, for HAL links

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _json(status: int, payload: Any, content_type: str = JSON_TYPE) -> Response:
    return Response(status, _json_bytes(payload), content_type)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def spring_error(status: int, path: str, message: str = "") -> Response:
    """The error object Spring Boot answers with, as brreg's services do."""
    payload: dict[str, Any] = {
        "timestamp": _now_iso(),
        "status": status,
        "error": HTTPStatus(status).phrase,
        "path": path,
    }
    if message:
        payload["message"] = message
    return _json(status, payload)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a home page in the data may use any code
        return "Unknown"


def _empty(status: int) -> Response:
    return Response(status)


def _html(status: int, html: str) -> Response:
    return Response(status, html.encode(), HTML_TYPE)


_NOT_FOUND_HTML = "<!doctype html><html><head><title>Not Found</title></head><body>Not Found</body></html>"


def malformed(response: Response) -> Response:
    """A 200 whose body is cut short: JSON that fails to parse, or a stream that stops early.

    Half an HTML page under a matching Content-Length is just a shorter page that no client could
    tell from the real one, so pages and text are cut mid-transfer instead: the full length is
    declared and the connection closes after half of it, as a dropped transfer does.
    """
    if response.stream is not None and response.content_length:
        cut_stream = _truncated(response.stream, response.content_length // 2)
        return dataclasses.replace(response, status=200, stream=cut_stream)
    if "json" not in (response.content_type or JSON_TYPE):
        half = response.body[: len(response.body) // 2]

        def cut_page() -> Generator[bytes, None, None]:
            yield half

        return dataclasses.replace(response, status=200, stream=cut_page, content_length=max(1, len(response.body)))
    cut = response.body[: max(1, len(response.body) // 2)] if response.body else b'{"'
    if _parses(cut):
        cut = b'{"truncated'
    return Response(200, cut, response.content_type or JSON_TYPE)


def _truncated(stream: Stream, limit: int) -> Stream:
    def chunks() -> Generator[bytes, None, None]:
        left = limit
        for chunk in stream():
            if left <= 0:
                return
            yield chunk[:left]
            left -= len(chunk)

    return chunks


def _parses(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- parameters


def _int_param(ctx: RequestContext, name: str, default: int, minimum: int = 0) -> int:
    text = ctx.param(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {text!r}") from None
    if value < minimum:
        raise BadRequest(f"{name} must be at least {minimum}")
    return value


def _period_end(filing: dict[str, Any]) -> str:
    return str((filing.get("regnskapsperiode") or {}).get("tilDato") or "")


def _paging(ctx: RequestContext, max_size: int = PAGING_WINDOW) -> tuple[int, int]:
    page = _int_param(ctx, "page", 0)
    size = _int_param(ctx, "size", DEFAULT_PAGE_SIZE, minimum=1)
    if size > max_size or (page + 1) * size > PAGING_WINDOW:
        raise BadRequest(f"(page + 1) * size must not exceed {PAGING_WINDOW}")
    return page, size


def _orgnr_param(text: str) -> str:
    if not _NINE_DIGITS.match(text):
        raise BadRequest(f"{text!r} is not a nine-digit organisation number")
    return text


def _page_links(ctx: RequestContext, page: int, size: int, total_pages: int) -> dict[str, Any]:
    def href(number: int) -> dict[str, str]:
        query = {**ctx.query, "page": [str(number)], "size": [str(size)]}
        return {"href": f"{ctx.base}{ctx.path}?{urlencode(query, doseq=True)}"}

    if total_pages == 0:
        return {"self": href(page)}
    links = {"first": href(0), "self": href(page)}
    if page > 0:
        links["prev"] = href(page - 1)
    if page + 1 < total_pages:
        links["next"] = href(page + 1)
    links["last"] = href(total_pages - 1)
    return links


def hal_page(ctx: RequestContext, key: str, items: list[Any], total: int, page: int, size: int) -> Response:
    """brreg's search envelope; `_embedded` is left out entirely when there are no hits."""
    total_pages = -(-total // size)
    body: dict[str, Any] = {}
    if items:
        body["_embedded"] = {key: items}
    body["_links"] = _page_links(ctx, page, size, total_pages)
    body["page"] = {"size": size, "totalElements": total, "totalPages": total_pages, "number": page}
    return _json(200, body, HAL_TYPE)


# --------------------------------------------------------------------------- dumps


def _accepts(header: str | None, offered: frozenset[str]) -> bool:
    if header is None or not header.strip():
        return True
    for part in header.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media == "*/*" or media in offered:
            return True
        if media.endswith("/*") and any(o.startswith(media[:-1]) for o in offered):
            return True
    return False


def _etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match with or without quotes: brreg sends a bare ETag, clients echo it either way."""
    if not header:
        return False
    for part in header.split(","):
        candidate = part.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        candidate = candidate.strip('"')
        if candidate in ("*", etag):
            return True
    return False


def _file_chunks(path: Path) -> Generator[bytes, None, None]:
    with path.open("rb") as handle:
        while chunk := handle.read(STREAM_CHUNK_BYTES):
            yield chunk


def dump_response(
    ctx: RequestContext, dump: DumpFile | None, offered: frozenset[str], content_type: str
) -> Response:
    if dump is None:
        return spring_error(404, ctx.path, "no dump in this data directory")
    if not _accepts(ctx.headers.get("Accept"), offered):
        return spring_error(406, ctx.path, "Accept must name a gzip dump type")
    headers = [
        ("ETag", dump.etag),
        ("Last-Modified", dump.last_modified),
        ("Content-Disposition", f'attachment; filename="{dump.download_name}"'),
    ]
    if _etag_matches(ctx.headers.get("If-None-Match"), dump.etag):
        return Response(304, headers=headers)
    size = dump.path.stat().st_size
    stream = lambda: _file_chunks(dump.path)  # noqa: E731
    return Response(200, content_type=content_type, headers=headers, stream=stream, content_length=size)


# --------------------------------------------------------------------------- home pages


def _huge_page(html: str) -> Response:
    head = html.encode()[: HUGE_BODY_BYTES // 2]
    filler = (b"<p>" + b"x" * 1016 + b"</p>\n") * 64  # 64 KiB of valid-looking markup

    def chunks() -> Generator[bytes, None, None]:
        yield head
        left = HUGE_BODY_BYTES - len(head)
        while left > 0:
            piece = filler[:left]
            left -= len(piece)
            yield piece

    return Response(200, content_type=HTML_TYPE, stream=chunks, content_length=HUGE_BODY_BYTES)


def _unknown_host(ctx: RequestContext, match: re.Match[str] | None) -> Response:
    return _html(404, _NOT_FOUND_HTML)


def _location(value: str) -> str:
    # Header values must be latin-1; data may hold non-ASCII paths.
    return quote(value, safe=":/?#[]@!$&'()*+,;=%~")


def site_response(site: Site, path: str) -> Response:
    """What one home page answers; `slow` is handled by the caller because it only delays."""
    if site.behaviour == "missing":
        return _html(404, _NOT_FOUND_HTML)
    if path == "/robots.txt":
        if site.robots is None:
            return _html(404, _NOT_FOUND_HTML)
        return Response(200, site.robots.encode(), TEXT_TYPE)
    if site.behaviour == "redirect_loop":
        # Two paths pointing at each other: a client must cap redirects, not trust a visited set alone.
        return Response(302, b"", HTML_TYPE, [("Location", "/loop" if path == "/" else "/")])
    page = site.pages.get(path)
    if page is None:
        return _html(404, _NOT_FOUND_HTML)
    status = int(page.get("status") or 200)
    html = str(page.get("html") or "")
    if site.behaviour == "huge" and status == 200:
        return _huge_page(html)
    location = page.get("location")
    headers = [("Location", _location(str(location)))] if location else []
    return Response(status, html.encode(), HTML_TYPE, headers)


def host_name(header: str | None) -> str:
    """The Host header without its port, lower case."""
    if not header:
        return ""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_address_host(host: str) -> bool:
    if host in ("", "localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- stats


class Stats:
    """Request counts per route and status; faults that never answer count as 'reset'/'timeout'."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_route_status: dict[str, Counter[str]] = {}

    def record(self, route: str, status: str) -> None:
        with self._lock:
            self._by_route_status.setdefault(route, Counter())[status] += 1

    def reset(self) -> None:
        with self._lock:
            self._by_route_status.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            by_route_status = {route: dict(counts) for route, counts in self._by_route_status.items()}
        by_status: Counter[str] = Counter()
        for counts in by_route_status.values():
            by_status.update(counts)
        return {
            "requests": sum(by_status.values()),
            "by_route": {route: sum(counts.values()) for route, counts in by_route_status.items()},
            "by_status": dict(by_status),
            "by_route_status": by_route_status,
        }


# --------------------------------------------------------------------------- routing

Handler = Callable[[RequestContext, re.Match[str] | None], Response]


@dataclass(frozen=True)
class Route:
    name: str
    handler: Handler
    match: re.Match[str] | None
    faultable: bool
    fault_key: str

    def respond(self, ctx: RequestContext) -> Response:
        return self.handler(ctx, self.match)


class RegistersApp:
    """Routing and answers, independent of sockets so each answer is a plain function call."""

    def __init__(
        self, data: RegisterData, plan: FaultPlan, *, slow_page_s: float, api_hosts: Iterable[str]
    ) -> None:
        self.data = data
        self.plan = plan
        self.stats = Stats()
        self.slow_page_s = slow_page_s
        self.api_hosts = frozenset(h.lower() for h in api_hosts)
        self.stopping = threading.Event()
        self.fallback_base = "http://127.0.0.1"
        e = re.escape(ENHETSREGISTERET)
        self._api_routes: list[tuple[re.Pattern[str], str, Handler]] = [
            (re.compile(rf"\A{e}/enheter/lastned\Z"), "lastned", self._lastned),
            (re.compile(rf"\A{e}/enheter/lastned/csv\Z"), "lastned_csv", self._lastned_csv),
            (re.compile(rf"\A{e}/enheter/([^/]+)/roller\Z"), "roller", self._roller),
            (re.compile(rf"\A{e}/enheter/([^/]+)\Z"), "enhet", self._enhet),
            (re.compile(rf"\A{e}/enheter/?\Z"), "enheter_sok", self._enheter_search),
            (re.compile(rf"\A{e}/underenheter/([^/]+)\Z"), "underenhet", self._underenhet),
            (re.compile(rf"\A{e}/underenheter/?\Z"), "underenheter", self._underenheter),
            (re.compile(rf"\A{e}/oppdateringer/enheter/?\Z"), "oppdateringer", self._oppdateringer),
            (re.compile(r"\A/regnskapsregisteret/regnskap/([^/]+)\Z"), "regnskap", self._regnskap),
            (re.compile(r"\A/adresser/v1/sok/?\Z"), "adresser", self._adresser),
        ]

    def pause(self, seconds: float) -> None:
        """Sleep that stop() cuts short, so slow answers never hold up a shutdown."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def route(self, ctx: RequestContext) -> Route:
        host = host_name(ctx.headers.get("Host"))
        if not (_is_address_host(host) or host in self.api_hosts):
            return self._site_route(host, ctx)
        if ctx.path.startswith("/_control/"):
            return Route("control", self._control, None, faultable=False, fault_key="")
        if ctx.method not in ("GET", "HEAD"):
            return Route("method_not_allowed", self._method_not_allowed, None, faultable=False, fault_key="")
        for pattern, name, handler in self._api_routes:
            match = pattern.match(ctx.path)
            if match:
                faultable = name not in DUMP_ROUTES or self.plan.faults.faults_on_dump
                # The query is part of the key: /underenheter?overordnetEnhet=X differs per parent,
                # and sharing one counter would make decisions depend on thread interleaving.
                return Route(name, handler, match, faultable=faultable, fault_key=ctx.target)
        return Route("not_found", self._not_found, None, faultable=True, fault_key=ctx.target)

    def _site_route(self, host: str, ctx: RequestContext) -> Route:
        site = self.data.sites.get(host)
        key = f"{host}{ctx.target}"  # hosts share paths like "/"; keep their counters apart
        if site is None:
            return Route("unknown_host", _unknown_host, None, faultable=True, fault_key=key)
        return Route("homepage", lambda c, m: self._homepage(site, c), None, faultable=True, fault_key=key)

    def fault_response(self, decision: Decision, route: Route, ctx: RequestContext) -> Response | None:
        faults = self.plan.faults
        is_site = route.name in ("homepage", "unknown_host")
        if decision.kind == "429":
            response = _html(429, "<h1>Too Many Requests</h1>") if is_site else spring_error(429, ctx.path)
            response.headers.append(("Retry-After", str(faults.retry_after_s)))
            return response
        if decision.kind == "500":
            return _html(500, "<h1>Internal Server Error</h1>") if is_site else spring_error(500, ctx.path)
        return None

    # ---- Enhetsregisteret

    def _enhet(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        assert match is not None
        found = self.data.unit(_orgnr_param(match.group(1)))
        if found is None:
            return _empty(404)
        state, record = found
        return _json(_STATE_STATUS.get(state, 200), record)

    def _roller(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        assert match is not None
        orgnr = _orgnr_param(match.group(1))
        # A unit removed on legal grounds is gone from every sub-resource (410, minimal body); a
        # deleted unit answers with its reduced SlettetEnhet body, so a lookup can tell it apart.
        found = self.data.unit(orgnr)
        if found is not None and found[0] in ("removed", "deleted"):
            return _json(_STATE_STATUS[found[0]], found[1])
        body = self.data.body_of(self.data.roles, orgnr)
        return _empty(404) if body is None else _json(200, body)

    def _underenhet(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        assert match is not None
        orgnr = _orgnr_param(match.group(1))
        if orgnr not in self.data.subunits:
            return _empty(404)
        return _json(200, self.data.subunit_record(orgnr))

    def _underenheter(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        page, size = _paging(ctx)
        parent = ctx.param("overordnetEnhet")
        if parent:
            orgnrs = self.data.subunits_by_parent.get(_orgnr_param(parent), [])
        else:
            orgnrs = list(self.data.subunits)
        window = orgnrs[page * size : (page + 1) * size]
        items = [self.data.subunit_record(orgnr) for orgnr in window]
        return hal_page(ctx, "underenheter", items, len(orgnrs), page, size)

    def _enheter_search(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        page, size = _paging(ctx)
        orgnrs = self._search(ctx)
        window = orgnrs[page * size : (page + 1) * size]
        items = [record for _, record in filter(None, map(self.data.unit, window))]
        return hal_page(ctx, "enheter", items, len(orgnrs), page, size)

    def _search(self, ctx: RequestContext) -> list[str]:
        listed = ctx.param("organisasjonsnummer")
        if listed:
            # A batch lookup by number needs no index: answer the active ones, in the asked order.
            wanted = [n.strip() for n in listed.split(",") if n.strip()]
            return [n for n in wanted if (found := self.data.unit(n)) is not None and found[0] == "active"]
        navn = (ctx.param("navn") or "").lower()
        forms = {f.strip() for f in (ctx.param("organisasjonsform") or "").split(",") if f.strip()}
        kommune = ctx.param("kommunenummer") or ""
        return [
            row.orgnr
            for row in self.data.search_rows()
            if navn in row.navn
            and (not forms or row.organisasjonsform in forms)
            and (not kommune or row.kommunenummer == kommune)
        ]

    def _oppdateringer(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        page, size = _paging(ctx)
        updates = self._updates_from(ctx)
        include_changes = (ctx.param("includeChanges") or "").lower() == "true"
        window = updates[page * size : (page + 1) * size]
        items = [self._update_item(ctx, update, include_changes) for update in window]
        return hal_page(ctx, "oppdaterteEnheter", items, len(updates), page, size)

    def _updates_from(self, ctx: RequestContext) -> list[Update]:
        data = self.data
        first_id = _int_param(ctx, "oppdateringsid", 0)
        start = bisect.bisect_left(data.updates, first_id, key=lambda u: u.oppdateringsid)
        dato = ctx.param("dato")
        if not dato:
            return data.updates[start:]
        if not _DATE_PREFIX.match(dato):
            raise BadRequest("dato must look like yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
        if data.datos_sorted:
            return data.updates[max(start, bisect.bisect_left(data.updates, dato, key=lambda u: u.dato)) :]
        return [u for u in data.updates[start:] if u.dato >= dato]

    def _update_item(self, ctx: RequestContext, update: Update, include_changes: bool) -> dict[str, Any]:
        unit_href = f"{ctx.base}{ENHETSREGISTERET}/enheter/{update.organisasjonsnummer}"
        item: dict[str, Any] = {
            "oppdateringsid": update.oppdateringsid,
            "dato": update.dato,
            "organisasjonsnummer": update.organisasjonsnummer,
            "endringstype": update.endringstype,
            "_links": {"enhet": {"href": unit_href}},
        }
        if include_changes:
            item["endringer"] = update.endringer if update.endringer is not None else []
        return item

    def _lastned(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        return dump_response(ctx, self.data.dump_json, DUMP_JSON_ACCEPTS, DUMP_JSON_TYPE)

    def _lastned_csv(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        return dump_response(ctx, self.data.dump_csv, DUMP_CSV_ACCEPTS, DUMP_CSV_TYPE)

    # ---- Regnskapsregisteret and Kartverket

    def _regnskap(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        assert match is not None
        filings = self.data.body_of(self.data.accounts, _orgnr_param(match.group(1)))
        if filings is None:
            return _empty(404)
        year, kind = ctx.param("år"), ctx.param("regnskapstype")
        if kind:
            filings = [f for f in filings if f.get("regnskapstype") == kind]
        if year:
            filings = [f for f in filings if _period_end(f).startswith(year)]
        return _json(200, filings)

    def _adresser(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        per_page = _int_param(ctx, "treffPerSide", ADDRESS_PAGE_SIZE, minimum=1)
        side = _int_param(ctx, "side", 0)
        if per_page > ADDRESS_MAX_PAGE_SIZE:
            raise BadRequest(f"treffPerSide must not exceed {ADDRESS_MAX_PAGE_SIZE}")
        hits = self._address_hits(ctx)
        window = hits[side * per_page : (side + 1) * per_page]
        metadata = {
            "viserFra": side * per_page,
            "viserTil": side * per_page + len(window),
            "totaltAntallTreff": len(hits),
            "side": side,
            "treffPerSide": per_page,
            "sokeStreng": urlsplit(ctx.target).query,
            "asciiKompatibel": True,
        }
        # The stored lines are the answer's objects already; splice them in unparsed.
        addresses = b",".join(a.raw for a in window)
        body = b'{"metadata":' + _json_bytes(metadata) + b',"adresser":[' + addresses + b"]}"
        return Response(200, body, JSON_TYPE)

    def _address_hits(self, ctx: RequestContext) -> list[Address]:
        sok = (ctx.param("sok") or "").strip().lower()
        postnummer, kommune = ctx.param("postnummer"), ctx.param("kommunenummer")
        if not (sok or postnummer or kommune):
            raise BadRequest("give sok, postnummer or kommunenummer")
        if postnummer:
            candidates = self.data.addresses_by_postnummer.get(postnummer, [])
        elif kommune:
            candidates = self.data.addresses_by_kommune.get(kommune, [])
        else:
            candidates = self.data.addresses
        if kommune:
            candidates = [a for a in candidates if a.kommunenummer == kommune]
        hits = [a for a in candidates if sok in a.text]
        if hits or not sok:
            return hits
        # Clients often send "Storgata 1, 0155 Oslo"; when no street address holds the whole
        # string, accept addresses whose text, postcode and place hold every word of it.
        tokens = [t for t in re.split(r"[\s,]+", sok) if t]
        return [a for a in candidates if all(t in a.haystack for t in tokens)]

    # ---- the rest

    def _homepage(self, site: Site, ctx: RequestContext) -> Response:
        if site.behaviour == "slow":
            self.pause(self.slow_page_s)
        return site_response(site, ctx.path)

    def _not_found(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        return spring_error(404, ctx.path)

    def _method_not_allowed(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        response = spring_error(405, ctx.path)
        response.headers.append(("Allow", "GET, HEAD"))
        return response

    def _control(self, ctx: RequestContext, match: re.Match[str] | None) -> Response:
        action = (ctx.method, ctx.path.rstrip("/"))
        if action == ("GET", "/_control/faults"):
            return _json(200, self.plan.faults.to_dict())
        if action == ("POST", "/_control/faults"):
            try:
                faults = Faults.from_dict(json.loads(ctx.body or b"{}"))
            except (ValueError, TypeError) as error:
                return _json(400, {"error": str(error)})
            self.plan.replace(faults)
            logger.info("faults replaced: %s", faults)
            return _json(200, faults.to_dict())
        if action == ("GET", "/_control/stats"):
            return _json(200, self.stats.snapshot())
        if action == ("POST", "/_control/reset"):
            self.stats.reset()
            self.plan.reset()
            return _json(200, {"reset": True})
        return _json(404, {"error": f"no control action {ctx.method} {ctx.path}"})


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: RegistersApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Kept-alive connections would otherwise keep being served after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        app = self.server.app
        try:
            ctx = self._context()
            route = app.route(ctx)
            decision = app.plan.decide(ctx.method, route.fault_key) if route.faultable else NO_FAULT
            self._answer(app, ctx, route, decision)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def _answer(self, app: RegistersApp, ctx: RequestContext, route: Route, decision: Decision) -> None:
        app.pause(decision.delay_s)
        if decision.kind == "reset":
            app.stats.record(route.name, "reset")
            self._reset()
            return
        if decision.kind == "timeout":
            app.stats.record(route.name, "timeout")
            app.pause(app.plan.faults.timeout_sleep_s)
            self.close_connection = True
            return
        response = app.fault_response(decision, route, ctx) or self._respond(route, ctx)
        if decision.kind == "malformed":
            response = malformed(response)
        if route.name != "control":
            app.stats.record(route.name, str(response.status))
        self._send(response, head_only=ctx.method == "HEAD")

    def _respond(self, route: Route, ctx: RequestContext) -> Response:
        try:
            return route.respond(ctx)
        except BadRequest as error:
            return spring_error(400, ctx.path, str(error))
        except Exception:
            logger.exception("%s %s failed", ctx.method, ctx.target)
            return spring_error(500, ctx.path)

    def _context(self) -> RequestContext:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        host = self.headers.get("Host")
        return RequestContext(
            method=self.command,
            target=self.path,
            path=unquote(parts.path) or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            base=f"http://{host}" if host else self.server.app.fallback_base,
        )

    def _send(self, response: Response, head_only: bool) -> None:
        status = response.status
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        if response.content_type and status != 304:
            lines.append(f"Content-Type: {response.content_type}")
        if status != 304:
            lines.append(f"Content-Length: {response.length}")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if head_only or status == 304:
            self.wfile.write(head)
        elif response.stream is None:
            self.wfile.write(head + response.body)  # one send: see the module docstring
        else:
            self._send_stream(head, response)

    def _send_stream(self, head: bytes, response: Response) -> None:
        assert response.stream is not None
        self.wfile.write(head)
        sent = 0
        chunks = response.stream()
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
                sent += len(chunk)
        finally:
            chunks.close()  # closes the dump file at once when the client goes away
        if sent != response.length:
            # A short stream (a malformed fault) can only be signalled by closing the connection.
            self.close_connection = True

    def _reset(self) -> None:
        """Close with SO_LINGER 0 so the kernel sends RST and the client sees a connection reset."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the reader holds a reference that would defer the real close
        self.connection.close()


# --------------------------------------------------------------------------- the service


class RegistersService:
    """The public registers on one local base URL, for tests, demos and benchmarks.

    Use as `with RegistersService(data_dir) as service:` and send brreg requests to
    `{service.base_url}/enhetsregisteret/api/...`; home pages go to the same address with
    the site's name in the Host header.
    """

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        *,
        slow_page_s: float = 3.0,
        api_hosts: Iterable[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self._address = (host, port)
        self._app = RegistersApp(
            RegisterData.load(self.data_dir), FaultPlan(faults), slow_page_s=slow_page_s, api_hosts=api_hosts
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> RegistersService:
        if self._server is not None:
            return self
        self._app.stopping.clear()
        self._server = _Server(self._address, self._app)
        self._app.fallback_base = self.base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="registers-service",
            daemon=True,
        )
        self._thread.start()
        logger.info("registers service on %s serving %s", self.base_url, self.data_dir)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._app.stopping.set()  # wakes slow pages and timeout faults
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None
        logger.info("registers service stopped")

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the registers service is not started")
        host, port = self._server.server_address[:2]
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    @property
    def faults(self) -> Faults:
        return self._app.plan.faults

    def set_faults(self, faults: Faults) -> None:
        self._app.plan.replace(faults)

    def reset(self) -> None:
        """Zero the stats and the per-path fault counters, as POST /_control/reset does."""
        self._app.stats.reset()
        self._app.plan.reset()

    def stats(self) -> dict[str, Any]:
        return self._app.stats.snapshot()

    def __enter__(self) -> RegistersService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enrichment-pipeline registers serve",
        description="Serve the public registers from a data directory.",
    )
    parser.add_argument("--data", type=Path, required=True, help="written by `enrichment-pipeline generate`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--slow-page-s", type=float, default=3.0, help="delay of 'slow' home pages")
    parser.add_argument("--api-host", action="append", default=[], help="a host name for the API routes")
    # One flag per fault setting, so a new setting cannot be forgotten here.
    for spec in dataclasses.fields(Faults):
        flag = "--" + spec.name.replace("_", "-")
        if isinstance(spec.default, bool):
            parser.add_argument(flag, action="store_true", help=f"fault setting {spec.name}")
        else:
            parser.add_argument(flag, type=type(spec.default), default=spec.default)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    faults = Faults(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(Faults)})
    service = RegistersService(
        args.data,
        host=args.host,
        port=args.port,
        faults=faults,
        slow_page_s=args.slow_page_s,
        api_hosts=args.api_host,
    ).start()
    print(service.base_url, flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

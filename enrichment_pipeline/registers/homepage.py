"""Fetch a company's home page safely and pull contact details out of its HTML.

The `hjemmeside` value in Enhetsregisteret is untrusted input that makes us connect to an
arbitrary host, so the fetcher guards like a server-side request would (REGISTERS.md):

- it resolves the host itself and refuses private, loopback, link-local (cloud metadata),
  multicast, reserved and unspecified addresses, then connects to the vetted IP with the
  original Host header and TLS server name, so a second DNS answer cannot swap the address;
- it follows redirects by hand, vetting every hop, at most `max_redirects`;
- it caps the body in bytes and the whole fetch in time, honours robots.txt, and sends an
  honest User-Agent;
- it does not hammer: https first, plain http only when https cannot connect, no other retry.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import requests
import urllib3
from requests.adapters import HTTPAdapter

from enrichment_pipeline.registers.http import (
    USER_AGENT,
    HostRateLimiter,
    HttpSettings,
    SessionPool,
    failure_kind,
)

logger = logging.getLogger(__name__)

HOMEPAGE_OUTCOMES: tuple[str, ...] = ("ok", "not_found", "error", "skipped")
ROBOTS_AGENT = "enrichment-pipeline"
ROBOTS_MAX_BYTES = 500_000
ROBOTS_CACHE_HOSTS = 4096
READ_CHUNK_BYTES = 65_536
REDIRECT_STATUSES: frozenset[int] = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}
HTML_TYPES: tuple[str, ...] = ("text/html", "application/xhtml+xml", "text/plain")
# Refused even when private addresses are allowed: no test needs the cloud metadata service.
ALWAYS_REFUSED: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address] = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
# Transport failures of a fetch (see _open and _read): for robots.txt they mean "unreachable".
NETWORK_FAILURES: frozenset[str] = frozenset({"connection reset", "connection broken", "connection error", "TLS failure"})
MAX_FOUND = 20
TITLE_MAX_CHARS = 300
DESCRIPTION_MAX_CHARS = 1000
TEXT_MAX_CHARS = 500_000

SOCIAL_HOSTS: tuple[str, ...] = (
    "facebook.com", "fb.com", "linkedin.com", "instagram.com", "twitter.com", "x.com",
    "youtube.com", "youtu.be",
)
# Share buttons and tracking pixels point at the network, not at the company's own profile.
SOCIAL_SKIP_PATHS: tuple[str, ...] = ("/sharer", "/share", "/intent", "/dialog", "/plugins", "/tr")

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?:{_LABEL}\.)+(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{1,59}})$")
_TRAILING_JUNK = " \t\r\n.,;:!?)\"'>"
_EMAIL_RE = re.compile(
    r"(?<![\w.%+-])[a-z0-9][a-z0-9._%+-]{0,63}@(?:[a-z0-9-]+\.)+[a-z]{2,24}(?![\w-])", re.I
)
_NOT_EMAIL_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".css", ".js")
# Norwegian numbers as people write them: 22334455, 22 33 44 55, 223 34 455, 412 34 567,
# optionally after +47 / 0047. Hyphens and 4-4 groups are left out: they match year ranges.
_PHONE_RE = re.compile(
    r"(?<![\w+])(?<!\d[ .])"
    r"(?:(?:\+|00) ?47[ .]?)?"
    r"(?:\d{8}|\d{2}[ .]\d{2}[ .]\d{2}[ .]\d{2}|\d{3}[ .]\d{2}[ .]\d{3}|\d{3}[ .]\d{3}[ .]\d{2})"
    r"(?![ .]?\d)"
)
_NATIONAL_RE = re.compile(r"^[2-9]\d{7}$")
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset=["']?([a-zA-Z0-9_-]+)""", re.I)


@dataclass(frozen=True)
class HomepageSettings:
    timeout_s: float = 10.0  # whole fetch budget per page, robots.txt and redirects included
    max_bytes: int = 1_000_000  # body cap; reading stops beyond it
    max_redirects: int = 5
    allow_private_addresses: bool = False  # tests set True for loopback
    respect_robots: bool = True
    # host -> "ip:port", like curl --resolve; "*" matches every host name (not IP literals).
    # The local registers service serves every home page by Host header on one address.
    resolve: Mapping[str, str] | None = None
    user_agent: str = USER_AGENT
    ca_bundle: str | None = None  # PEM file of trusted roots; None = requests' default bundle


@dataclass(frozen=True)
class HomepageResult:
    outcome: str  # ok | not_found | error | skipped
    url: str | None  # the final URL fetched (the page's own name, not the pinned IP)
    status: int | None
    title: str | None
    description: str | None
    emails: tuple[str, ...]
    phones: tuple[str, ...]  # normalised Norwegian numbers, "+4722334455"
    social: tuple[str, ...]
    reason: str | None  # why not ok
    latency_s: float


@dataclass(frozen=True)
class _Page:
    url: str
    status: int
    content_type: str
    body: bytes


class _Stop(Exception):
    """Ends a fetch with an outcome; raised from deep inside the hop loop."""

    def __init__(self, outcome: str, reason: str, url: str | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.url = url
        self.status = status


class _CannotConnect(Exception):
    """No connection (refused, TLS handshake failed, connect timeout): try plain http instead."""


def normalise_hjemmeside(value: str | None) -> list[str] | None:
    """Candidate URLs for a `hjemmeside` value, https first; None when it is not a usable host.

    Register values never carry a scheme, but one is tolerated. The host is lower-cased and
    IDNA-encoded; the path is kept as written.
    """
    if value is None:
        return None
    text = value.strip().strip(_TRAILING_JUNK)
    text = re.sub(r"^(?:https?:)?//", "", text, flags=re.I)
    if not text or any(ch.isspace() for ch in text):
        return None
    split_at = min((i for i in (text.find(c) for c in "/?#") if i >= 0), default=len(text))
    netloc, rest = text[:split_at], text[split_at:]
    host, _, port = netloc.partition(":")
    host = _ascii_host(host.lower().rstrip("."))
    if host is None or not _HOST_RE.match(host) or (port and not (port.isdigit() and int(port) < 65536)):
        return None
    path = rest.split("#", 1)[0].rstrip(_TRAILING_JUNK) or "/"
    if not path.startswith("/"):
        path = "/" + path
    authority = f"{host}:{port}" if port else host
    return [f"https://{authority}{path}", f"http://{authority}{path}"]


def literal_address(value: str) -> str | None:
    """The IP address a `hjemmeside` names instead of a host name (`10.0.0.1:8080/x`, `[::1]`), if it does."""
    text = re.sub(r"^(?:https?:)?//", "", value.strip(), flags=re.I)
    netloc = re.split(r"[/?#]", text, maxsplit=1)[0]
    if netloc.startswith("["):
        host = netloc[1:].split("]", 1)[0]
    else:
        host = netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc
    return host if _is_ip_literal(host) else None


def _unusable_reason(hjemmeside: str) -> str:
    """Why a `hjemmeside` that is not a host name is not fetched: an address says which kind it is."""
    address = literal_address(hjemmeside)
    if address is None:
        return "unparseable hjemmeside"
    # Register values name hosts, never addresses; a literal is refused whatever it is, and the
    # reason says when it is one we would never connect to anyway.
    return address_refusal(address) or f"IP address {address} instead of a host name"


def _ascii_host(host: str) -> str | None:
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None


def address_refusal(address: str, allow_private: bool = False) -> str | None:
    """Why we will not connect to `address`, or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in ALWAYS_REFUSED:
        return f"private address {address}"
    if allow_private:
        return None
    if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified
            or ip.is_multicast or ip.is_reserved or not ip.is_global):
        return f"private address {address}"
    return None


def normalise_phone(raw: str) -> str | None:
    """"+47" and the eight national digits, or None when it is not a Norwegian number."""
    compact = re.sub(r"[^\d+]", "", raw)
    if compact.startswith("+"):
        compact = compact[1:]
        if not compact.startswith("47"):
            return None
        compact = compact[2:]
    elif compact.startswith("0047"):
        compact = compact[4:]
    elif len(compact) == 10 and compact.startswith("47"):
        compact = compact[2:]
    return f"+47{compact}" if _NATIONAL_RE.match(compact) else None


class _PageParser(HTMLParser):
    """Collects the title, meta description, links and visible text of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self.description: str | None = None
        self.og_description: str | None = None
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self._text_chars = 0
        self._in_title = False
        self._title_parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag in ("script", "style", "noscript", "template"):
            self._skip_depth += 1
        elif tag == "title" and self.title is None:
            self._in_title = True
        elif tag == "meta":
            self._meta(values)
        elif tag == "a" and values.get("href"):
            self.hrefs.append(values["href"].strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "noscript", "template") and self._skip_depth:
            self._skip_depth -= 1
        elif tag == "title" and self._in_title:
            self._in_title = False
            self.title = _collapse(" ".join(self._title_parts), TITLE_MAX_CHARS)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
        elif not self._skip_depth and self._text_chars < TEXT_MAX_CHARS:
            self.text.append(data)
            self._text_chars += len(data)

    def _meta(self, values: Mapping[str, str]) -> None:
        name = (values.get("name") or values.get("property") or "").lower()
        if name == "description" and self.description is None:
            self.description = _collapse(values.get("content", ""), DESCRIPTION_MAX_CHARS)
        elif name == "og:description" and self.og_description is None:
            self.og_description = _collapse(values.get("content", ""), DESCRIPTION_MAX_CHARS)


def _collapse(text: str, limit: int) -> str | None:
    collapsed = " ".join(text.split())[:limit]
    return collapsed or None


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.lower(), value)
        if len(seen) >= MAX_FOUND:
            break
    return tuple(seen.values())


def _emails(hrefs: list[str], text: str) -> tuple[str, ...]:
    found: list[str] = []
    for href in hrefs:
        if href.lower().startswith("mailto:"):
            for address in unquote(href[7:].split("?", 1)[0]).split(","):
                found.extend(m.group(0) for m in _EMAIL_RE.finditer(address.strip()))
    found.extend(m.group(0) for m in _EMAIL_RE.finditer(text))
    return _unique(e.lower() for e in found if not e.lower().endswith(_NOT_EMAIL_SUFFIXES))


def _phones(hrefs: list[str], text: str) -> tuple[str, ...]:
    candidates = [unquote(h[4:]) for h in hrefs if h.lower().startswith("tel:")]
    candidates.extend(m.group(0) for m in _PHONE_RE.finditer(text.replace("\xa0", " ")))
    return _unique(p for p in map(normalise_phone, candidates) if p is not None)


def _social(hrefs: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for href in hrefs:
        parts = urlsplit(href)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not any(
            host == h or host.endswith("." + h) for h in SOCIAL_HOSTS
        ):
            continue
        if parts.path.lower().startswith(SOCIAL_SKIP_PATHS) or parts.path in ("", "/"):
            continue
        found.append(urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, "")))
    return _unique(found)


def _decode_html(body: bytes, content_type: str) -> str:
    match = re.search(r"charset=[\"']?([\w-]+)", content_type, re.I)
    sniffed = _META_CHARSET_RE.search(body[:4096])
    encoding = match.group(1) if match else (sniffed.group(1).decode("ascii") if sniffed else "utf-8")
    try:
        return body.decode(encoding, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def extract(html: str) -> dict[str, Any]:
    """title, description, emails, phones and social links of one HTML page."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    text = " ".join(parser.text)
    return {
        "title": parser.title,
        "description": parser.description or parser.og_description,
        "emails": _emails(parser.hrefs, text),
        "phones": _phones(parser.hrefs, text),
        "social": _social(parser.hrefs),
    }


class _PinnedAdapter(HTTPAdapter):
    """Connects to the vetted IP in the URL but speaks TLS (SNI and certificate check) to the
    host name carried in the Host header, so pinning the address does not weaken TLS."""

    def __init__(self, pool_maxsize: int) -> None:
        super().__init__(pool_connections=16, pool_maxsize=pool_maxsize, max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        name = _name_of_host_header(request.headers.get("Host", ""))
        if host_params.get("scheme") == "https" and name:
            pool_kwargs["server_hostname"] = name
            pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs


def _name_of_host_header(value: str) -> str:
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _split_target(value: str) -> tuple[str, int]:
    """'ip:port' or '[v6]:port' from a resolve override."""
    if value.startswith("["):
        host, _, port = value[1:].partition("]:")
    else:
        host, _, port = value.rpartition(":")
    return host, int(port)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _redirect_target(url: str, location: str, status: int) -> str:
    try:
        target = urljoin(url, location.strip())
        scheme = urlsplit(target).scheme
    except ValueError as exc:
        raise _Stop("error", "unparseable redirect", url, status) from exc
    if scheme not in DEFAULT_PORTS:
        raise _Stop("error", "redirect to an unsupported scheme", target, status)
    return target


def _with_http_fallback(url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme != "https":
        return [url]
    return [url, urlunsplit(("http",) + tuple(parts)[1:])]


class HomepageFetcher:
    """Thread-safe: each fetch borrows one session from a shared pool; robots.txt answers are
    cached for all threads."""

    def __init__(
        self, settings: HomepageSettings = HomepageSettings(), http_settings: HttpSettings | None = None
    ) -> None:
        # http_settings lends the politeness knobs (per-host rate, concurrency); the fetch
        # budget and the User-Agent come from HomepageSettings.
        self.settings = settings
        self._http = http_settings or HttpSettings()
        self._limiter = HostRateLimiter(self._http.rate_limit_per_s)
        self._slots = threading.BoundedSemaphore(max(1, self._http.max_in_flight))
        self._sessions = SessionPool(self._new_session)
        self._local = threading.local()  # the session the current thread's fetch borrowed
        self._robots: OrderedDict[str, RobotFileParser] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, hjemmeside: str | None) -> HomepageResult:
        started = time.monotonic()
        if hjemmeside is None or not hjemmeside.strip():
            return _result("skipped", started, reason="no hjemmeside")
        candidates = normalise_hjemmeside(hjemmeside)
        if candidates is None:
            return _result("skipped", started, reason=_unusable_reason(hjemmeside))
        try:
            # One slot per whole fetch (robots.txt and redirects included): the semaphore is
            # not re-entrant, and a page is one unit of work for the caller.
            with self._slots, self._sessions.session() as session:
                self._local.session = session
                deadline = started + self.settings.timeout_s
                page = self._follow(
                    candidates[0], deadline, self.settings.max_bytes, check_robots=True, https_failed=set()
                )
        except _Stop as stop:
            logger.debug("home page %s: %s", hjemmeside, stop.reason)
            return _result(stop.outcome, started, url=stop.url, status=stop.status, reason=stop.reason)
        except (ValueError, requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            # Untrusted pages find odd corners of URL parsing; one page must not stop a batch.
            logger.warning("home page %s failed unexpectedly: %r", hjemmeside, exc)
            return _result("error", started, url=candidates[0], reason=f"unexpected {type(exc).__name__}")
        return self._page_result(page, started)

    def close(self) -> None:
        self._sessions.close()

    def __enter__(self) -> HomepageFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _page_result(self, page: _Page, started: float) -> HomepageResult:
        if page.status in (404, 410):
            return _result("not_found", started, page=page, reason=f"HTTP {page.status}")
        if not 200 <= page.status < 300:
            return _result("error", started, page=page, reason=f"HTTP {page.status}")
        media_type = page.content_type.split(";", 1)[0].strip().lower()
        if media_type and media_type not in HTML_TYPES:
            return _result("error", started, page=page, reason=f"not HTML ({media_type})")
        found = extract(_decode_html(page.body, page.content_type))
        return HomepageResult(
            outcome="ok", url=page.url, status=page.status, reason=None,
            latency_s=time.monotonic() - started, **found,
        )

    def _follow(
        self, url: str, deadline: float, max_bytes: int, *, check_robots: bool, https_failed: set[str]
    ) -> _Page:
        """GET `url`, following redirects by hand and vetting every hop.

        `https_failed` collects, for this one fetch, the hosts whose https would not connect, so
        robots.txt and the page do not each pay for the same failed handshake.
        """
        for _hop in range(self.settings.max_redirects + 1):
            response, url = self._open_with_fallback(url, deadline, check_robots, https_failed)
            location = response.headers.get("Location")
            if response.status_code in REDIRECT_STATUSES and location:
                response.close()
                url = _redirect_target(url, location, response.status_code)
                continue
            return self._read(response, url, deadline, max_bytes)
        raise _Stop("error", "too many redirects", url=url)

    def _open_with_fallback(
        self, url: str, deadline: float, check_robots: bool, https_failed: set[str]
    ) -> tuple[requests.Response, str]:
        """Open one hop: https first, plain http when https cannot connect to that host."""
        candidates = _with_http_fallback(url)
        for index, candidate in enumerate(candidates):
            fallback_left = index + 1 < len(candidates)
            netloc = urlsplit(candidate).netloc
            try:
                if check_robots:
                    self._require_robots_allow(candidate, deadline, https_failed)
                if fallback_left and netloc in https_failed:
                    continue
                return self._open(candidate, deadline, fallback_left), candidate
            except _CannotConnect as exc:
                if fallback_left:
                    https_failed.add(netloc)
                    logger.debug("https to %s failed (%s); trying http", candidate, exc)
                    continue
                raise _Stop("error", str(exc), url=candidate) from exc
        raise AssertionError("unreachable: the last candidate either returns or raises")

    def _open(self, url: str, deadline: float, fallback_left: bool) -> requests.Response:
        try:
            parts = urlsplit(url)
            host = _ascii_host((parts.hostname or "").lower())
            port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
        except ValueError as exc:
            raise _Stop("error", "unparseable URL", url=url) from exc
        if parts.scheme not in DEFAULT_PORTS or not host:
            raise _Stop("error", "unparseable URL", url=url)
        ip, connect_port = self._vetted_target(host, port, url)
        literal = f"[{ip}]" if ":" in ip else ip
        wire_url = urlunsplit((parts.scheme, f"{literal}:{connect_port}", parts.path or "/", parts.query, ""))
        headers = {
            "Host": host if parts.port is None else f"{host}:{parts.port}",
            "User-Agent": self.settings.user_agent,
            "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
            "Accept-Language": "nb,no;q=0.9,en;q=0.5",
        }
        remaining_s = self._remaining_s(deadline, url)
        # Leave half the budget for plain http when https may not connect at all.
        connect_s = min(remaining_s, self.settings.timeout_s / 2) if fallback_left else remaining_s
        self._limiter.acquire(host)
        try:
            return self._local.session.get(
                wire_url, headers=headers, allow_redirects=False, stream=True,
                timeout=(connect_s, remaining_s), verify=self.settings.ca_bundle or True,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise _CannotConnect("connect timeout") from exc
        except requests.exceptions.SSLError as exc:
            raise _CannotConnect("TLS failure") from exc
        except requests.RequestException as exc:
            kind = failure_kind(exc)
            if kind == "timeout":
                raise _Stop("error", "timeout", url=url) from exc
            if kind == "connection error" or (parts.scheme == "https" and kind == "connection reset"):
                raise _CannotConnect(kind) from exc
            raise _Stop("error", kind, url=url) from exc

    def _vetted_target(self, host: str, port: int, url: str) -> tuple[str, int]:
        """The address to connect to, after refusing anything that is not a public address."""
        override = None
        if self.settings.resolve and not _is_ip_literal(host):
            override = self.settings.resolve.get(host) or self.settings.resolve.get("*")
        if override:
            address, port = _split_target(override)
            addresses = [address]
        else:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                raise _Stop("error", f"cannot resolve {host}", url=url) from exc
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        # Refuse when any answer is private: a mixed answer is how rebinding attacks start.
        for address in addresses:
            refusal = address_refusal(address, self.settings.allow_private_addresses)
            if refusal:
                raise _Stop("skipped", refusal, url=url)
        return addresses[0], port

    def _read(self, response: requests.Response, url: str, deadline: float, max_bytes: int) -> _Page:
        """Read the body under the byte cap and the time budget."""
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        try:
            if status in (404, 410) or not 200 <= status < 300:
                return _Page(url, status, content_type, b"")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _Stop("error", f"body larger than {max_bytes} bytes", url=url, status=status)
            chunks: list[bytes] = []
            size = 0
            while True:
                self._remaining_s(deadline, url, status)
                # read1 returns after one socket read, so a trickling server meets the deadline.
                chunk = response.raw.read1(READ_CHUNK_BYTES, decode_content=True)
                if not chunk:
                    return _Page(url, status, content_type, b"".join(chunks))
                size += len(chunk)
                if size > max_bytes:
                    raise _Stop("error", f"body larger than {max_bytes} bytes", url=url, status=status)
                chunks.append(chunk)
        except urllib3.exceptions.HTTPError as exc:
            reason = "timeout" if isinstance(exc, urllib3.exceptions.TimeoutError) else "connection broken"
            raise _Stop("error", reason, url=url, status=status) from exc
        finally:
            response.close()

    def _require_robots_allow(self, url: str, deadline: float, https_failed: set[str]) -> None:
        if not self.settings.respect_robots:
            return
        parts = urlsplit(url)
        parser = self._robots_for(parts.scheme, parts.netloc, deadline, https_failed)
        if not parser.can_fetch(ROBOTS_AGENT, url):
            raise _Stop("skipped", "robots.txt disallows", url=url)

    def _robots_for(
        self, scheme: str, netloc: str, deadline: float, https_failed: set[str]
    ) -> RobotFileParser:
        with self._lock:
            cached = self._robots.get(netloc)
            if cached is not None:
                self._robots.move_to_end(netloc)
                return cached
        parser = self._fetch_robots(f"{scheme}://{netloc}/robots.txt", deadline, https_failed)
        with self._lock:
            self._robots[netloc] = parser
            while len(self._robots) > ROBOTS_CACHE_HOSTS:
                self._robots.popitem(last=False)
        return parser

    def _fetch_robots(self, url: str, deadline: float, https_failed: set[str]) -> RobotFileParser:
        """RFC 9309: 4xx means no rules; 5xx, 429 or a network failure means stay away for now.

        Either ends this fetch as an error and is not cached, so a later run asks again: a
        robots.txt cut off mid-transfer (or reset) is unreachable, not empty, and may well have
        disallowed the page (RFC 9309 2.3.1.4: assume complete disallow).
        """
        parser = RobotFileParser(url)
        try:
            page = self._follow(
                url, deadline, ROBOTS_MAX_BYTES, check_robots=False, https_failed=https_failed
            )
        except _Stop as stop:
            if stop.reason == "timeout" or isinstance(stop.__cause__, _CannotConnect):
                raise
            if stop.reason in NETWORK_FAILURES:
                raise _Stop("error", f"robots.txt unavailable ({stop.reason})", url=stop.url or url,
                            status=stop.status) from stop
            # Refused hops or oversized files are not rules; the page itself is vetted anyway.
            parser.allow_all = True
            return parser
        if 200 <= page.status < 300:
            parser.parse(page.body.decode("utf-8", errors="replace").splitlines())
        elif 400 <= page.status < 500 and page.status != 429:
            # 429 is "slow down", not "no rules": like a 5xx it says nothing of what is allowed.
            parser.allow_all = True
        else:
            raise _Stop("error", f"robots.txt unavailable (HTTP {page.status})", url=url, status=page.status)
        return parser

    def _remaining_s(self, deadline: float, url: str, status: int | None = None) -> float:
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise _Stop("error", "timeout", url=url, status=status)
        return remaining_s

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # a proxy or .netrc would defeat the address pinning
        adapter = _PinnedAdapter(pool_maxsize=max(1, self._http.max_in_flight))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session


def _result(
    outcome: str,
    started: float,
    *,
    url: str | None = None,
    status: int | None = None,
    reason: str | None = None,
    page: _Page | None = None,
) -> HomepageResult:
    if page is not None:
        url, status = page.url, page.status
    return HomepageResult(
        outcome=outcome, url=url, status=status, title=None, description=None,
        emails=(), phones=(), social=(), reason=reason, latency_s=time.monotonic() - started,
    )

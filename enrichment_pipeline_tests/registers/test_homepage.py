"""The home-page fetcher against real local servers that route by Host header.

Every site below lives on one loopback address, reached through the `resolve` override the
way the project's local registers service serves them. The server speaks plain http, so
each fetch also exercises the https-first, http-fallback path.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from enrichment_pipeline.registers.homepage import (
    HOMEPAGE_OUTCOMES,
    HomepageFetcher,
    HomepageSettings,
    address_refusal,
    normalise_hjemmeside,
    normalise_phone,
)
from enrichment_pipeline.registers.http import USER_AGENT, HttpSettings

PAGE = """<!doctype html><html><head>
<meta charset="utf-8"><title>  Testbedrift AS &ndash; Rørlegger i Oslo </title>
<meta name="description" content="Vi fikser   rør &amp; bad.">
<script>var tel = "99 88 77 66"; var mail = "script@example.no";</script>
</head><body>
<p>Ring oss på 22 33 44 55 eller +47 412 34 567. Org.nr. 974 760 673. &copy; 2019-2024</p>
<p>Skriv til post@testbedrift.no eller <a href="mailto:Salg@Testbedrift.no?subject=Hei">salg</a>.</p>
<a href="tel:+4791234567">mobil</a> <img src="logo@2x.png">
<a href="https://www.facebook.com/testbedrift">Facebook</a>
<a href="https://no.linkedin.com/company/testbedrift/">LinkedIn</a>
<a href="https://www.facebook.com/sharer/sharer.php?u=x">Del</a>
<a href="/kontakt">Kontakt</a>
</body></html>"""

SITES: dict[str, dict[str, Any]] = {
    "www.example.no": {
        "robots": "User-agent: *\nDisallow: /private\n",
        "pages": {"/": (200, {}, PAGE), "/private": (200, {}, "<title>secret</title>")},
    },
    "www.moved.no": {"pages": {"/": (301, {"Location": "https://www.example.no/"}, "")}},
    "www.metadata.no": {"pages": {"/": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, "")}},
    "www.loop.no": {"pages": {"/": (302, {"Location": "/a"}, ""), "/a": (302, {"Location": "/"}, "")}},
    "www.gone.no": {"pages": {}},
    "www.brokenrobots.no": {"robots_status": 503, "pages": {"/": (200, {}, "<title>open</title>")}},
    "www.noagents.no": {
        "robots": "User-agent: enrichment-pipeline\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
        "pages": {"/": (200, {}, "<title>hidden</title>")},
    },
    "www.huge.no": {"pages": {"/": (200, {}, "x" * 300_000)}},
    "www.slow.no": {"behaviour": "slow", "pages": {"/": (200, {}, "<title>late</title>")}},
    "www.trickle.no": {"behaviour": "trickle", "pages": {"/": (200, {}, "")}},
    "www.unbounded.no": {"behaviour": "unbounded", "pages": {"/": (200, {}, "")}},
}


class SiteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    log: list[tuple[str, str, str]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        host = self.headers.get("Host", "").split(":")[0]
        self.log.append((host, self.path, self.headers.get("User-Agent", "")))
        site = SITES.get(host, {"pages": {}})
        if self.path == "/robots.txt":
            robots = site.get("robots")
            if "robots_status" in site:
                self.reply(site["robots_status"], {}, "unavailable")
            elif robots is None:
                self.reply(404, {}, "")
            else:
                self.reply(200, {"Content-Type": "text/plain"}, robots)
            return
        behaviour = site.get("behaviour")
        if behaviour == "slow":
            time.sleep(2.0)
        elif behaviour in ("trickle", "unbounded"):
            self.stream_slowly(behaviour)
            return
        status, headers, body = site["pages"].get(self.path, (404, {}, "not here"))
        self.reply(status, headers, body)

    def reply(self, status: int, headers: dict[str, str], body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", headers.get("Content-Type", "text/html; charset=utf-8"))
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            if name != "Content-Type":
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def stream_slowly(self, behaviour: str) -> None:
        """trickle: 100 bytes every 50 ms; unbounded: big chunks with no declared length."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        if behaviour == "trickle":
            self.send_header("Content-Length", "100000")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for _ in range(200):
                if behaviour == "trickle":
                    self.wfile.write(b"<p>" + b"a" * 97)
                    time.sleep(0.05)
                else:
                    self.wfile.write(b"b" * 65_536)
        except OSError:
            pass  # the client hung up, which is what the test wants


class Sites:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.log: list[tuple[str, str, str]] = []
        handler = type("BoundSiteHandler", (SiteHandler,), {"log": self.log})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    server = Sites()
    yield server
    server.close()


def fetcher_for(port: int, **overrides: Any) -> HomepageFetcher:
    settings: dict[str, Any] = {
        "timeout_s": 3.0,
        "allow_private_addresses": True,
        "resolve": {"*": f"127.0.0.1:{port}"},
    }
    settings.update(overrides)
    return HomepageFetcher(HomepageSettings(**settings), HttpSettings(rate_limit_per_s=0))


@pytest.fixture()
def fetcher(sites: Sites) -> Iterator[HomepageFetcher]:
    sites.log.clear()
    with fetcher_for(sites.port) as local:
        yield local


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("www.Example.no", ["https://www.example.no/", "http://www.example.no/"]),
        ("www.example.no/", ["https://www.example.no/", "http://www.example.no/"]),
        ("WWW.EXAMPLE.NO/Om-Oss", ["https://www.example.no/Om-Oss", "http://www.example.no/Om-Oss"]),
        ("x.wixsite.com/y", ["https://x.wixsite.com/y", "http://x.wixsite.com/y"]),
        ("  www.example.no. ", ["https://www.example.no/", "http://www.example.no/"]),
        ("http://www.example.no", ["https://www.example.no/", "http://www.example.no/"]),
        ("www.bøker.no", ["https://www.xn--bker-gra.no/", "http://www.xn--bker-gra.no/"]),
        ("www.|example.no", None),
        ("www.example .no", None),
        ("localhost", None),
        ("10.0.0.1", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_hjemmeside(value: str | None, expected: list[str] | None) -> None:
    assert normalise_hjemmeside(value) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("22 33 44 55", "+4722334455"), ("+47 412 34 567", "+4741234567"), ("004791234567", "+4791234567"),
     ("12345678", None), ("+46 8 123 456 78", None)],
)
def test_normalise_phone(raw: str, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1"])
def test_private_addresses_are_refused_without_a_request(sites: Sites, address: str) -> None:
    sites.log.clear()
    target = f"[{address}]:{sites.port}" if ":" in address else f"{address}:{sites.port}"
    settings = HomepageSettings(resolve={"*": target}, allow_private_addresses=False)
    with HomepageFetcher(settings, HttpSettings(rate_limit_per_s=0)) as fetcher:
        result = fetcher.fetch("www.example.no")
    assert (result.outcome, result.reason) == ("skipped", f"private address {address}")
    assert sites.log == []


def test_address_rules() -> None:
    assert address_refusal("8.8.8.8") is None
    assert address_refusal("2001:4860:4860::8888") is None
    assert address_refusal("::ffff:10.0.0.1") == "private address ::ffff:10.0.0.1"
    assert address_refusal("172.16.5.4") and address_refusal("192.168.1.1") and address_refusal("0.0.0.0")
    assert address_refusal("fe80::1") and address_refusal("224.0.0.1") and address_refusal("100.64.0.1")
    assert address_refusal("127.0.0.1", allow_private=True) is None
    # The cloud metadata address stays refused even when tests allow loopback.
    assert address_refusal("169.254.169.254", allow_private=True) == "private address 169.254.169.254"


def test_missing_and_junk_hjemmeside_are_skipped(fetcher: HomepageFetcher, sites: Sites) -> None:
    assert (fetcher.fetch(None).outcome, fetcher.fetch(None).reason) == ("skipped", "no hjemmeside")
    assert fetcher.fetch("www.|example.no").reason == "unparseable hjemmeside"
    assert sites.log == []


def test_served_page_is_extracted_over_http_after_https_fails(fetcher: HomepageFetcher, sites: Sites) -> None:
    result = fetcher.fetch("www.Example.no")
    assert (result.outcome, result.status, result.reason) == ("ok", 200, None)
    assert result.url == "http://www.example.no/"
    assert result.title == "Testbedrift AS – Rørlegger i Oslo"
    assert result.description == "Vi fikser rør & bad."
    assert result.emails == ("salg@testbedrift.no", "post@testbedrift.no")
    assert result.phones == ("+4791234567", "+4722334455", "+4741234567")
    assert result.social == (
        "https://www.facebook.com/testbedrift", "https://no.linkedin.com/company/testbedrift/"
    )
    assert ("www.example.no", "/robots.txt", USER_AGENT) in sites.log
    assert all(ua == USER_AGENT for _, _, ua in sites.log)


def test_redirect_is_followed_and_each_hop_vetted(fetcher: HomepageFetcher, sites: Sites) -> None:
    result = fetcher.fetch("www.moved.no")
    assert (result.outcome, result.url) == ("ok", "http://www.example.no/")
    assert result.title == "Testbedrift AS – Rørlegger i Oslo"
    pages = [(host, path) for host, path, _ in sites.log if path != "/robots.txt"]
    assert pages == [("www.moved.no", "/"), ("www.example.no", "/")]


def test_redirect_to_the_metadata_address_is_refused(sites: Sites) -> None:
    with fetcher_for(sites.port) as fetcher:
        result = fetcher.fetch("www.metadata.no")
    assert (result.outcome, result.reason) == ("skipped", "private address 169.254.169.254")


def test_redirect_loop_is_capped(sites: Sites) -> None:
    with fetcher_for(sites.port, max_redirects=3) as fetcher:
        sites.log.clear()
        result = fetcher.fetch("www.loop.no")
    assert (result.outcome, result.reason) == ("error", "too many redirects")
    assert len([p for _, p, _ in sites.log if p != "/robots.txt"]) == 4


def test_missing_page_is_not_found(fetcher: HomepageFetcher) -> None:
    result = fetcher.fetch("www.gone.no/side")
    assert (result.outcome, result.status) == ("not_found", 404)


def test_oversized_body_is_refused(sites: Sites) -> None:
    with fetcher_for(sites.port, max_bytes=100_000) as fetcher:
        declared = fetcher.fetch("www.huge.no")
        streamed = fetcher.fetch("www.unbounded.no")
    assert (declared.outcome, declared.reason) == ("error", "body larger than 100000 bytes")
    assert (streamed.outcome, streamed.reason) == ("error", "body larger than 100000 bytes")


def test_robots_txt_disallow_is_respected(fetcher: HomepageFetcher, sites: Sites) -> None:
    private = fetcher.fetch("www.example.no/private")
    named = fetcher.fetch("www.noagents.no")
    assert (private.outcome, private.reason) == ("skipped", "robots.txt disallows")
    assert (named.outcome, named.reason) == ("skipped", "robots.txt disallows")
    assert [p for _, p, _ in sites.log] == ["/robots.txt", "/robots.txt"]


def test_robots_txt_server_error_stops_the_fetch_and_is_not_cached(
    fetcher: HomepageFetcher, sites: Sites
) -> None:
    first, second = fetcher.fetch("www.brokenrobots.no"), fetcher.fetch("www.brokenrobots.no")
    assert (first.outcome, first.reason) == ("error", "robots.txt unavailable (HTTP 503)")
    assert second.reason == first.reason
    assert [p for _, p, _ in sites.log] == ["/robots.txt", "/robots.txt"]


def test_robots_txt_is_cached_per_host(fetcher: HomepageFetcher, sites: Sites) -> None:
    fetcher.fetch("www.example.no")
    fetcher.fetch("www.example.no/kontakt")
    assert [p for _, p, _ in sites.log].count("/robots.txt") == 1


@pytest.mark.parametrize("host", ["www.slow.no", "www.trickle.no"])
def test_slow_page_hits_the_time_budget(sites: Sites, host: str) -> None:
    with fetcher_for(sites.port, timeout_s=1.0) as fetcher:
        result = fetcher.fetch(host)
    assert (result.outcome, result.reason) == ("error", "timeout")
    assert result.latency_s < 2.0


@pytest.fixture(scope="module")
def tls_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sites, Path]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=www.example.no",
         "-addext", "subjectAltName=DNS:www.example.no"],
        check=True, capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = Sites(tls=context)
    yield server, cert
    server.close()


def test_https_to_the_pinned_address_verifies_the_host_name(tls_sites: tuple[Sites, Path]) -> None:
    server, cert = tls_sites
    with fetcher_for(server.port, ca_bundle=str(cert)) as fetcher:
        result = fetcher.fetch("www.example.no")
    assert (result.outcome, result.url) == ("ok", "https://www.example.no/")
    assert result.title == "Testbedrift AS – Rørlegger i Oslo"


def test_https_certificate_for_another_name_is_not_accepted(tls_sites: tuple[Sites, Path]) -> None:
    server, cert = tls_sites
    with fetcher_for(server.port, ca_bundle=str(cert)) as fetcher:
        result = fetcher.fetch("www.moved.no")
    # https fails verification, and plain http to a TLS port gets no answer either.
    assert result.outcome == "error" and result.outcome in HOMEPAGE_OUTCOMES
    assert not (result.url or "").startswith("https://")

"""Clients for the public registers: Enhetsregisteret, Regnskapsregisteret and Kartverket.

Each method is one documented endpoint and returns the `Fetched` record from the shared HTTP
layer, so a lookup step decides per company with `outcome_of` and never handles exceptions.
Base URLs are plain arguments; `brreg_base_url()` and `geonorge_base_url()` read the
environment when called, which is how tests and the demo point the clients at the local
registers service.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from enrichment_pipeline.registers.http import DUMP_ACCEPT, DUMP_CSV_ACCEPT, Download, Fetched, HttpClient

logger = logging.getLogger(__name__)

BRREG_DEFAULT_URL = "https://data.brreg.no"
GEONORGE_DEFAULT_URL = "https://ws.geonorge.no"
BRREG_URL_ENV = "BRREG_API_URL"
GEONORGE_URL_ENV = "GEONORGE_API_URL"

OUTCOMES: tuple[str, ...] = ("ok", "not_found", "deleted", "gone", "error", "skipped")

SUB_UNIT_PAGE_SIZE = 100
# Enhetsregisteret answers 400 once (page + 1) * size exceeds this.
DEEP_PAGING_LIMIT = 10_000
# format -> (path under /enheter, the Accept type that dump is served for)
DUMP_FORMATS: dict[str, tuple[str, str]] = {
    "json": ("lastned", DUMP_ACCEPT),
    "csv": ("lastned/csv", DUMP_CSV_ACCEPT),
}


def brreg_base_url() -> str:
    return os.environ.get(BRREG_URL_ENV) or BRREG_DEFAULT_URL


def geonorge_base_url() -> str:
    return os.environ.get(GEONORGE_URL_ENV) or GEONORGE_DEFAULT_URL


def _segment(value: str) -> str:
    """Quote a path segment: organisation numbers come from data and must not steer the path."""
    return quote(str(value), safe="")


def embedded(body: Any, key: str) -> list[dict[str, Any]]:
    """Items of a HAL envelope; Enhetsregisteret leaves `_embedded` out when there are none."""
    if not isinstance(body, dict):
        return []
    items = (body.get("_embedded") or {}).get(key)
    return items if isinstance(items, list) else []


def outcome_of(fetched: Fetched) -> str:
    """The per-company outcome of a register lookup, one of OUTCOMES."""
    if fetched.error is not None:
        return "error"
    if fetched.status == 404:
        return "not_found"
    if fetched.status == 410:
        return "gone"
    if fetched.status == 200:
        # A deleted unit is still a 200, with a reduced body that carries slettedato.
        if isinstance(fetched.body, dict) and "slettedato" in fetched.body:
            return "deleted"
        return "ok"
    return "error"


class _RegisterClient:
    def __init__(self, base_url: str, http: HttpClient | None) -> None:
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self.http = http if http is not None else HttpClient()

    def close(self) -> None:
        if self._owns_http:
            self.http.close()


class BrregClient(_RegisterClient):
    """Enhetsregisteret and Regnskapsregisteret, both under data.brreg.no."""

    def __init__(self, base_url: str = BRREG_DEFAULT_URL, http: HttpClient | None = None) -> None:
        super().__init__(base_url, http)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/enhetsregisteret/api"

    def unit(self, orgnr: str) -> Fetched:
        """200 active or deleted (with slettedato), 410 removed, 404 never existed, 400 malformed."""
        return self.http.get_json(f"{self.api_url}/enheter/{_segment(orgnr)}", ok_statuses=(200, 404, 410))

    def roles(self, orgnr: str) -> Fetched:
        """404 means the unit has no roles; 410 that the unit was removed."""
        url = f"{self.api_url}/enheter/{_segment(orgnr)}/roller"
        return self.http.get_json(url, ok_statuses=(200, 404, 410))

    def sub_units(self, orgnr: str) -> Fetched:
        """All sub-units of a unit as one list, paging until the last page or the paging limit.

        A failed page fails the whole call (body None): a partial list would be stored as if
        it were complete.
        """
        url = f"{self.api_url}/underenheter"
        combined: list[dict[str, Any]] = []
        attempts = 0
        latency_s = 0.0
        page = 0
        while True:
            params = {"overordnetEnhet": orgnr, "size": str(SUB_UNIT_PAGE_SIZE), "page": str(page)}
            fetched = self.http.get_json(url, params=params, ok_statuses=(200,))
            attempts += fetched.attempts
            latency_s += fetched.latency_s
            if fetched.error is not None:
                return replace(fetched, body=None, attempts=attempts, latency_s=latency_s)
            combined.extend(embedded(fetched.body, "underenheter"))
            if _is_last_page(fetched.body, page):
                break
            page += 1
            if (page + 1) * SUB_UNIT_PAGE_SIZE > DEEP_PAGING_LIMIT:
                logger.warning("sub-units of %s stop at the %d deep-paging limit", orgnr, DEEP_PAGING_LIMIT)
                break
        return Fetched(
            url=f"{url}?overordnetEnhet={_segment(orgnr)}",
            status=fetched.status,
            body=combined,
            text=None,
            error=None,
            attempts=attempts,
            latency_s=latency_s,
            headers=fetched.headers,
        )

    def accounts(self, orgnr: str) -> Fetched:
        """A bare array of filings; 404 with an empty body when nothing is filed."""
        url = f"{self.base_url}/regnskapsregisteret/regnskap/{_segment(orgnr)}"
        return self.http.get_json(url, ok_statuses=(200, 404, 410))

    def updates(self, from_id: int | None = None, size: int = 1000, page: int = 0, dato: str | None = None) -> Fetched:
        """The change feed from id `from_id` (or from time `dato`, `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`) on;
        items under `_embedded.oppdaterteEnheter`."""
        params = {"size": str(size), "page": str(page)}
        if from_id is not None:
            params["oppdateringsid"] = str(from_id)
        if dato is not None:
            params["dato"] = dato
        return self.http.get_json(f"{self.api_url}/oppdateringer/enheter", params=params, ok_statuses=(200,))

    def dump_url(self, fmt: str = "json") -> str:
        return f"{self.api_url}/enheter/{_dump_format(fmt)[0]}"

    def dump_head(self, fmt: str = "json") -> Fetched:
        """HEAD of the bulk dump: its ETag says whether a new one was built overnight."""
        return self.http.head(self.dump_url(fmt), accept=_dump_format(fmt)[1])

    def download_dump(self, fmt: str = "json", etag: str | None = None) -> Download:
        """The bulk dump as a stream of gzip bytes; status 304 when `etag` still matches."""
        return self.http.stream_download(self.dump_url(fmt), etag=etag, accept=_dump_format(fmt)[1])


def _dump_format(fmt: str) -> tuple[str, str]:
    if fmt not in DUMP_FORMATS:
        raise ValueError(f"dump format is one of {sorted(DUMP_FORMATS)}, got {fmt!r}")
    return DUMP_FORMATS[fmt]


def _is_last_page(body: Any, page: int) -> bool:
    if not isinstance(body, dict) or "_embedded" not in body:
        return True
    total_pages = (body.get("page") or {}).get("totalPages")
    if not isinstance(total_pages, int):
        return True
    return page + 1 >= total_pages


class GeonorgeClient(_RegisterClient):
    """Kartverket's address search."""

    def __init__(self, base_url: str = GEONORGE_DEFAULT_URL, http: HttpClient | None = None) -> None:
        super().__init__(base_url, http)

    def search(
        self,
        sok: str,
        postnummer: str | None = None,
        kommunenummer: str | None = None,
        per_page: int = 10,
    ) -> Fetched:
        params = {"sok": sok, "treffPerSide": str(per_page)}
        if postnummer:
            params["postnummer"] = postnummer
        if kommunenummer:
            params["kommunenummer"] = kommunenummer
        return self.http.get_json(f"{self.base_url}/adresser/v1/sok", params=params, ok_statuses=(200,))

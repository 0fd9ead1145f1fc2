"""The registers resource: clients for the real public services by default, or the local service."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from enrichment_pipeline.registers.clients import BrregClient, GeonorgeClient, brreg_base_url, geonorge_base_url
from enrichment_pipeline.registers.homepage import HomepageFetcher, HomepageSettings
from enrichment_pipeline.registers.http import HttpClient, HttpSettings

ENV_PREFIX = "ENRICHMENT_HTTP_"


def _env(name: str, value: Any, default: Any) -> Any:
    """Config value, else ENRICHMENT_HTTP_<NAME>, else the default (polite for the real hosts)."""
    if value is not None:
        return value
    raw = os.environ.get(ENV_PREFIX + name.upper())
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes")
    return type(default)(raw) if default is not None else raw


class RegistersResource(dg.ConfigurableResource):
    """Base URLs default to https://data.brreg.no and https://ws.geonorge.no (BRREG_API_URL, GEONORGE_API_URL)."""

    brreg_api_url: str | None = None
    geonorge_api_url: str | None = None
    rate_limit_per_s: float | None = None
    max_in_flight: int | None = None
    timeout_s: float | None = None
    retries: int | None = None
    backoff_base_s: float | None = None
    homepage_allow_private_addresses: bool | None = None
    homepage_resolve: str | None = None
    """Send every home-page request to this ip:port (the local registers service serves them by Host)."""

    _http: HttpClient | None = PrivateAttr(default=None)

    def http_settings(self) -> HttpSettings:
        defaults = HttpSettings()
        return HttpSettings(
            timeout_s=_env("timeout_s", self.timeout_s, defaults.timeout_s),
            retries=_env("retries", self.retries, defaults.retries),
            backoff_base_s=_env("backoff_base_s", self.backoff_base_s, defaults.backoff_base_s),
            rate_limit_per_s=_env("rate_limit_per_s", self.rate_limit_per_s, defaults.rate_limit_per_s),
            max_in_flight=_env("max_in_flight", self.max_in_flight, defaults.max_in_flight),
        )

    def in_flight(self) -> int:
        return self.http_settings().max_in_flight

    def _client(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient(self.http_settings())
        return self._http

    def brreg(self) -> BrregClient:
        return BrregClient(self.brreg_api_url or brreg_base_url(), http=self._client())

    def geonorge(self) -> GeonorgeClient:
        return GeonorgeClient(self.geonorge_api_url or geonorge_base_url(), http=self._client())

    def homepages(self) -> HomepageFetcher:
        resolve = _env("homepage_resolve", self.homepage_resolve, None)
        settings = HomepageSettings(
            allow_private_addresses=_env("homepage_allow_private_addresses", self.homepage_allow_private_addresses, False),
            resolve={"*": resolve} if resolve else None,
        )
        return HomepageFetcher(settings, self.http_settings())

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

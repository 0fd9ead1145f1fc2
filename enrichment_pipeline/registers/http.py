"""The shared HTTP layer for the public registers: polite, bounded and honest about failure.

Every register client goes through one `HttpClient`. It owns the rules the registers ask of
us (REGISTERS.md): an honest User-Agent, a per-host rate limit, bounded concurrency, retries
with backoff that honour `Retry-After`, and a `Fetched` record that says what happened
instead of raising, so a lookup over a million companies never dies on one bad answer.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import logging
import random
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

logger = logging.getLogger(__name__)

USER_AGENT = (
    "enrichment-pipeline/0.1 (+https://github.com/enrichment-pipeline; "
    "open-data enrichment of Enhetsregisteret)"
)
# The bulk dump is only served for a gzip vendor type; plain JSON gets 400 or 406.
DUMP_ACCEPT = "application/vnd.brreg.enhetsregisteret.enhet.v2+gzip;charset=UTF-8"
DUMP_CSV_ACCEPT = "text/csv"
DUMP_CHUNK_BYTES = 1 << 20

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
# Only these statuses carry a Retry-After worth obeying; elsewhere our own backoff decides.
RETRY_AFTER_STATUSES: frozenset[int] = frozenset({429, 503})
TEXT_LIMIT_CHARS = 500
LATENCY_SAMPLE_SIZE = 10_000

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class HttpSettings:
    timeout_s: float = 10.0  # connect and read timeout per attempt
    retries: int = 4  # extra attempts after the first, for retryable failures only
    backoff_base_s: float = 0.5  # exponential backoff base, full jitter
    backoff_max_s: float = 30.0  # also caps a server's Retry-After
    rate_limit_per_s: float = 8.0  # per host; 0 = unlimited (the local service in tests)
    max_in_flight: int = 8  # bounded concurrency per client
    user_agent: str = USER_AGENT


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int | None  # status of the last attempt; None when no response came at all
    body: Any  # parsed JSON when the answer was JSON and parsed, else None
    text: str | None  # raw text when not JSON; truncated when the JSON was malformed
    error: str | None  # one line when the request ultimately failed; 404/410 are answers, not errors
    attempts: int
    latency_s: float  # wall time including retries and waits
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Download:
    """An opened bulk download: `chunks` yields the body exactly as sent (the gzip file).

    Use it as a context manager so the connection is released even when the caller stops
    early; `chunks` is empty unless `status` is 200 (304 means the ETag still matches).
    """

    url: str
    status: int | None
    error: str | None  # set when the download could not be opened, as in Fetched
    etag: str | None
    last_modified: str | None  # Java Date.toString() form on Enhetsregisteret, not an HTTP date
    headers: Mapping[str, str]
    chunks: Iterator[bytes]
    _response: requests.Response | None = None

    def close(self) -> None:
        if self._response is not None:
            self._response.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Attempt:
    """One attempt's result, before the retry loop decides what to do with it."""

    status: int | None
    body: Any
    text: str | None
    headers: Mapping[str, str]
    failure: str | None  # what went wrong, e.g. "timeout", "HTTP 503"; None on an answer
    retryable: bool
    retry_after_s: float | None = None
    response: requests.Response | None = None  # kept open only for streaming downloads


class HostRateLimiter:
    """A per-host token bucket of depth one, shared by all threads.

    Depth one (pure pacing) keeps the rate honest over any window: a deeper bucket would let
    a burst of `rate` requests through on top of the steady rate.
    """

    def __init__(self, rate_per_s: float) -> None:
        self._interval_s = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, host: str) -> float:
        """Wait for this host's next slot; returns the seconds waited."""
        if self._interval_s == 0.0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(host, now))
            self._next_slot[host] = slot + self._interval_s
        # Sleep outside the lock: each thread has already reserved its own slot.
        wait_s = slot - now
        if wait_s > 0:
            time.sleep(wait_s)
        return wait_s


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


def _is_timeout(exc: BaseException) -> bool:
    """requests wraps a read timeout during the body in ConnectionError, so walk the chain."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
            return True
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        todo.extend(c for c in (current.__cause__, current.__context__) if c is not None)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return False


def failure_kind(exc: requests.RequestException) -> str:
    """A short, stable name for a transport failure: it ends up in metrics and error lines."""
    if _is_timeout(exc):
        return "timeout"
    message = str(exc).lower()
    if "reset" in message or "aborted" in message or "remotedisconnected" in message:
        return "connection reset"
    if "name resolution" in message or "name or service not known" in message:
        return "DNS failure"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failure"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection broken"
    return "connection error"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _looks_like_json(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    return "json" in content_type or response.content.lstrip()[:1] in (b"{", b"[")


def _decode_text(response: requests.Response) -> str:
    # Avoid requests' charset guessing: it scans the whole body and is slow on big pages.
    encoding = requests.utils.get_encoding_from_headers(response.headers) or "utf-8"
    try:
        return response.content.decode(encoding, errors="replace")
    except LookupError:
        return response.content.decode("utf-8", errors="replace")


def _read_answer(response: requests.Response, expect_json: bool) -> tuple[Any, str | None, bool]:
    """(body, text, malformed) for an answer; `expect_json` makes an unparseable body malformed."""
    if not response.content:
        return None, "", expect_json
    if not (expect_json or _looks_like_json(response)):
        return None, _decode_text(response), False
    try:
        # orjson parses a register's answer several times faster than json, and at 0 ms latency
        # the client's own CPU is the limit; json still reads what orjson refuses (NaN, huge ints).
        return orjson.loads(response.content), None, False
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(response.content), None, False
    except ValueError:
        return None, _decode_text(response)[:TEXT_LIMIT_CHARS], True


class _PoolAdapter(HTTPAdapter):
    """Connection reuse sized to our concurrency, with retries left to our own loop."""

    def __init__(self, pool_maxsize: int) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)


class SessionPool:
    """requests.Sessions lent to one thread at a time and shared by all threads.

    Per-thread sessions (threading.local) would leak one session, with its open sockets, for
    every worker thread of every `map_concurrent` batch. Callers borrow inside their
    concurrency semaphore, so the pool never grows beyond `max_in_flight` sessions.
    """

    def __init__(self, factory: Callable[[], requests.Session]) -> None:
        self._factory = factory
        self._idle: list[requests.Session] = []
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[requests.Session]:
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            session = self._factory()
            with self._lock:
                self._all.append(session)
        try:
            yield session
        finally:
            with self._lock:
                self._idle.append(session)

    def size(self) -> int:
        with self._lock:
            return len(self._all)

    def close(self) -> None:
        with self._lock:
            sessions, self._all, self._idle = self._all, [], []
        for session in sessions:
            session.close()


class HttpClient:
    """Thread-safe: all threads share the rate limiter, the concurrency semaphore and a pool of
    sessions (one borrowed per request, see SessionPool)."""

    def __init__(self, settings: HttpSettings = HttpSettings(), *, seed: int | None = None) -> None:
        self.settings = settings
        self._limiter = HostRateLimiter(settings.rate_limit_per_s)
        self._slots = threading.BoundedSemaphore(max(1, settings.max_in_flight))
        self._sessions = SessionPool(self._new_session)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._calls = 0
        self._attempts = 0
        self._retries = 0
        self._errors = 0
        self._statuses: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()
        self._latencies: deque[float] = deque(maxlen=LATENCY_SAMPLE_SIZE)

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        accept: str = "application/json",
        ok_statuses: Collection[int] = (200, 404, 410),
    ) -> Fetched:
        """GET a JSON resource with retries; never raises for network or HTTP trouble."""
        headers = {"Accept": accept}
        expect_json = "json" in accept.lower()
        full_url = _with_params(url, params)

        def attempt() -> _Attempt:
            return self._json_attempt(full_url, headers, ok_statuses, expect_json)

        return self._with_retries(full_url, attempt)

    def head(self, url: str, *, accept: str = DUMP_ACCEPT) -> Fetched:
        """HEAD a resource (the bulk dump) to read its ETag and Last-Modified cheaply."""
        headers = {"Accept": accept}
        return self._with_retries(url, lambda: self._plain_attempt("HEAD", url, headers, stream=False))

    def stream_download(
        self,
        url: str,
        *,
        etag: str | None = None,
        accept: str = DUMP_ACCEPT,
        chunk_bytes: int = DUMP_CHUNK_BYTES,
    ) -> Download:
        """Open a conditional streaming GET of the bulk dump.

        Sends `If-None-Match: etag` when given: 304 means our copy is current. Only the
        opening is retried; a failure mid-body raises requests.ConnectionError from the
        iterator and the caller starts over. `Accept-Encoding: identity` and raw reads keep
        the bytes exactly as stored (the gzip file), never transparently decoded.
        """
        headers = {"Accept": accept, "Accept-Encoding": "identity"}
        if etag:
            headers["If-None-Match"] = etag
        last: list[_Attempt] = []  # failed attempts close their response; only the last may hold one

        def attempt() -> _Attempt:
            last[:] = [self._plain_attempt("GET", url, headers, stream=True)]
            return last[0]

        fetched = self._with_retries(url, attempt)
        response = last[0].response if last else None
        if response is not None and fetched.status != 200:
            response.close()  # a 304 has no body to read
            response = None
        return Download(
            url=url,
            status=fetched.status,
            error=fetched.error,
            etag=fetched.headers.get("ETag"),
            last_modified=fetched.headers.get("Last-Modified"),
            headers=fetched.headers,
            chunks=_raw_chunks(response, chunk_bytes) if response is not None else iter(()),
            _response=response,
        )

    def stats(self) -> dict[str, Any]:
        """Counters for run metadata: calls, requests on the wire, retries, statuses, latency."""
        with self._lock:
            latencies = sorted(self._latencies)
            summary: dict[str, Any] = {
                "calls": self._calls,
                "requests": self._attempts,
                "retries": self._retries,
                "errors": self._errors,
                "statuses": dict(self._statuses),
                "failures": dict(self._failures),
            }
        summary["sessions"] = self._sessions.size()
        summary["latency_p50_s"] = _percentile(latencies, 0.50)
        summary["latency_p95_s"] = _percentile(latencies, 0.95)
        summary["latency_max_s"] = latencies[-1] if latencies else None
        return summary

    def close(self) -> None:
        self._sessions.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.headers["User-Agent"] = self.settings.user_agent
        adapter = _PoolAdapter(pool_maxsize=max(1, self.settings.max_in_flight))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def _send(self, method: str, url: str, headers: Mapping[str, str], stream: bool) -> requests.Response:
        self._limiter.acquire(urlsplit(url).netloc.lower())
        timeout = (self.settings.timeout_s, self.settings.timeout_s)
        with self._slots, self._sessions.session() as session:
            response = session.request(method, url, headers=dict(headers), timeout=timeout, stream=stream)
            if not stream:
                _ = response.content  # read the body inside the slot and the timeout
        return response

    def _json_attempt(
        self, url: str, headers: Mapping[str, str], ok_statuses: Collection[int], expect_json: bool
    ) -> _Attempt:
        try:
            response = self._send("GET", url, headers, stream=False)
        except requests.RequestException as exc:
            return _transport_failure(exc)
        status = response.status_code
        if status in ok_statuses and 200 <= status < 300:
            body, text, malformed = _read_answer(response, expect_json)
            if malformed:
                return _Attempt(status, None, text, response.headers, "malformed JSON", retryable=True)
            return _Attempt(status, body, text, response.headers, None, retryable=False)
        body, text, _ = _read_answer(response, expect_json=False)
        if status in ok_statuses:
            return _Attempt(status, body, text, response.headers, None, retryable=False)
        return _status_failure(status, body, text, response.headers)

    def _plain_attempt(
        self, method: str, url: str, headers: Mapping[str, str], stream: bool
    ) -> _Attempt:
        try:
            response = self._send(method, url, headers, stream=stream)
        except requests.RequestException as exc:
            return _transport_failure(exc)
        status = response.status_code
        if status >= 400:
            response.close()
            return _status_failure(status, None, None, response.headers)
        return _Attempt(status, None, None, response.headers, None, retryable=False, response=response)

    def _with_retries(self, url: str, attempt: Callable[[], _Attempt]) -> Fetched:
        started = time.monotonic()
        max_attempts = max(1, self.settings.retries + 1)
        number = 0
        result = None
        for number in range(1, max_attempts + 1):
            result = attempt()
            self._count_attempt(result)
            if not result.retryable or number == max_attempts:
                break
            delay_s = self._delay_s(number, result.retry_after_s)
            logger.debug("retrying %s after %s in %.2fs (attempt %d)", url, result.failure, delay_s, number)
            with self._lock:
                self._retries += 1
            time.sleep(delay_s)
        assert result is not None
        error = None
        if result.failure is not None:
            error = f"{result.failure} after {_plural(number, 'attempt')}"
        fetched = Fetched(
            url=url,
            status=result.status,
            body=result.body,
            text=result.text,
            error=error,
            attempts=number,
            latency_s=time.monotonic() - started,
            headers=CaseInsensitiveDict(result.headers),
        )
        self._count_call(fetched)
        return fetched

    def _delay_s(self, attempt_number: int, retry_after_s: float | None) -> float:
        cap_s = self.settings.backoff_max_s
        if retry_after_s is not None:
            return min(retry_after_s, cap_s)
        ceiling_s = min(cap_s, self.settings.backoff_base_s * 2 ** (attempt_number - 1))
        with self._lock:
            return self._random.uniform(0.0, ceiling_s)

    def _count_attempt(self, result: _Attempt) -> None:
        with self._lock:
            self._attempts += 1
            self._statuses[str(result.status) if result.status is not None else "none"] += 1
            if result.failure is not None:
                self._failures[result.failure] += 1

    def _count_call(self, fetched: Fetched) -> None:
        with self._lock:
            self._calls += 1
            self._latencies.append(fetched.latency_s)
            if fetched.error is not None:
                self._errors += 1
        if fetched.error is not None:
            logger.info("GET %s failed: %s", fetched.url, fetched.error)


def _with_params(url: str, params: Mapping[str, str] | None) -> str:
    """The URL with its query encoded once, so errors and logs name exactly what was asked."""
    if not params:
        return url
    request = requests.PreparedRequest()
    try:
        request.prepare_url(url, params)
    except requests.RequestException:
        return url  # the attempt reports the bad URL as its error
    return request.url or url


def _transport_failure(exc: requests.RequestException) -> _Attempt:
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return _Attempt(None, None, None, {}, f"invalid URL ({_one_line(str(exc))})", retryable=False)
    return _Attempt(None, None, None, {}, failure_kind(exc), retryable=True)


def _status_failure(status: int, body: Any, text: str | None, headers: Mapping[str, str]) -> _Attempt:
    retry_after_s = None
    if status in RETRY_AFTER_STATUSES:
        retry_after_s = parse_retry_after(headers.get("Retry-After"))
    return _Attempt(
        status, body, text, headers, f"HTTP {status}",
        retryable=status in RETRYABLE_STATUSES, retry_after_s=retry_after_s,
    )


def _raw_chunks(response: requests.Response, chunk_bytes: int) -> Iterator[bytes]:
    """Yield the body as sent, closing the response however the iteration ends."""
    try:
        for chunk in response.raw.stream(chunk_bytes, decode_content=False):
            if chunk:
                yield chunk
    except urllib3.exceptions.HTTPError as exc:
        raise requests.ConnectionError(f"download of {response.url} broke: {exc}") from exc
    finally:
        response.close()


def _percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return sorted_values[0]
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[round(fraction * 100) - 1]


def map_concurrent(fn: Callable[[T], R], items: Sequence[T], max_in_flight: int) -> list[R]:
    """Apply `fn` to every item with at most `max_in_flight` threads; results keep input order.

    Each thread takes the next item itself: no future per item and no submitting thread, which at
    thousands of quick answers a second is what a ThreadPoolExecutor spends its time on (its
    submit lock fights the workers for the GIL). The first exception raised by `fn` stops every
    thread from taking more and propagates, so `fn` should return failures as values (as
    `HttpClient.get_json` does) rather than raise.
    """
    if not items:
        return []
    results: list[Any] = [None] * len(items)
    failures: list[BaseException] = []
    taken = itertools.count()
    lock = threading.Lock()

    def work() -> None:
        while not failures:
            with lock:
                index = next(taken)
            if index >= len(items):
                return
            try:
                results[index] = fn(items[index])
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below, as pool.map would
                failures.append(exc)
                return

    workers = [threading.Thread(target=work, name=f"lookup-{n}", daemon=True)
               for n in range(max(1, min(max_in_flight, len(items))))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    return results
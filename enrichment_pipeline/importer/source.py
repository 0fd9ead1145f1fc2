"""Where a dump comes from: a local path or a URL, gzip or not, JSON or CSV, detected from content.

A URL is downloaded to a file first (with a conditional request on the ETag), so no database
connection is ever held while bytes arrive over the network.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from enrichment_pipeline.errors import BadDumpError

log = logging.getLogger(__name__)

REAL_DUMP_URL = "https://data.brreg.no/enhetsregisteret/api/enheter/lastned"
JSON_ACCEPT = "application/vnd.brreg.enhetsregisteret.enhet.v2+gzip;charset=UTF-8"
CSV_ACCEPT = "application/vnd.brreg.enhetsregisteret.enhet+gzip;charset=UTF-8"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Download:
    path: Path | None  # None when the server said the dump is unchanged (304)
    etag: str | None
    last_modified: str | None


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def download(url: str, dest_dir: Path, *, etag: str | None = None, user_agent: str) -> Download:
    """GET the dump to a file; `If-None-Match` makes an unchanged dump a cheap 304."""
    import requests

    accept = CSV_ACCEPT if url.rstrip("/").endswith("/csv") else JSON_ACCEPT
    headers = {"Accept": accept, "User-Agent": user_agent}
    if etag:
        headers["If-None-Match"] = etag
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        with requests.get(url, headers=headers, stream=True, timeout=(10, 300)) as response:
            if response.status_code == 304:
                return Download(None, etag, response.headers.get("Last-Modified"))
            if response.status_code != 200:
                raise BadDumpError(f"the dump at {url} answered HTTP {response.status_code}, not 200")
            new_etag = response.headers.get("ETag", "").strip('"') or None
            name = "enheter-" + (new_etag or hashlib.sha1(url.encode()).hexdigest()[:12]) + (".csv.gz" if "csv" in accept else ".json.gz")
            path = dest_dir / name
            partial = path.with_suffix(path.suffix + ".part")
            with open(partial, "wb") as out:
                for chunk in response.iter_content(_CHUNK):
                    out.write(chunk)
            partial.replace(path)
            return Download(path, new_etag, response.headers.get("Last-Modified"))
    except requests.RequestException as exc:
        raise BadDumpError(f"could not download the dump from {url}: {type(exc).__name__}") from None


class _CheckedGzip(io.RawIOBase):
    """gzip.GzipFile, but a truncated or corrupt stream becomes a BadDumpError with one line."""

    def __init__(self, raw: BinaryIO, name: str) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            return self._gz.readinto(buffer)
        except EOFError:
            raise BadDumpError(f"{self._name} is truncated: the gzip stream ends before its end marker") from None
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise BadDumpError(f"{self._name} is not a valid gzip file ({exc})") from None


@contextmanager
def open_decompressed(path: Path) -> Iterator[io.BufferedReader]:
    """The dump's bytes, gunzipped on the fly when the file starts with the gzip magic."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        if magic == b"\x1f\x8b":
            stream: io.RawIOBase | BinaryIO = _CheckedGzip(raw, path.name)
            yield io.BufferedReader(stream, buffer_size=_CHUNK)  # type: ignore[arg-type]
        else:
            yield io.BufferedReader(raw, buffer_size=_CHUNK)  # type: ignore[arg-type]


# Byte-order marks of the wide encodings, longest first (UTF-32 LE starts like UTF-16 LE).
_WIDE_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"),
)


def _wide_encoding(head: bytes) -> str | None:
    """UTF-16 or UTF-32 when the file starts like one (a byte-order mark, or NULs between ASCII)."""
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            return encoding
    sample = head[:64]
    if sample.count(b"\x00") * 4 >= len(sample) * 3 > 0:
        return "UTF-32"
    if sample.count(b"\x00") * 2 >= len(sample) > 0:
        return "UTF-16"
    return None


def detect_format(head: bytes, name: str) -> str:
    """'json' or 'csv' from the first bytes; anything else is not a dump."""
    wide = _wide_encoding(head)
    if wide is not None:
        raise BadDumpError(f"{name} is {wide}, not UTF-8 as the register's dumps are: convert it to UTF-8")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise BadDumpError(f"{name} is empty: no units in it")
    first = text[:1]
    if first == b"[":
        return "json"
    if first == b"<":
        raise BadDumpError(f"{name} is an HTML or XML page, not a register dump (an error page from the server?)")
    if first == b"{":
        raise BadDumpError(f"{name} holds a JSON object, not the array of units a dump is")
    if b"organisasjonsnummer" in text.split(b"\n", 1)[0].lower():
        return "csv"
    raise BadDumpError(f"{name} is neither a JSON array of units nor a CSV with an organisasjonsnummer column")


_JAVA_ZONES = {"UTC": 0, "GMT": 0, "CET": 1, "CEST": 2}


def java_date_to_iso(text: str | None) -> str | None:
    """The dump's Last-Modified, in Java's `Date.toString()` form (`Wed Aug 05 04:30:57 CEST 2026`),
    as ISO 8601 UTC; an HTTP date is accepted too. None when it cannot be read."""
    import datetime as dt
    from email.utils import parsedate_to_datetime

    if not text:
        return None
    parts = text.split()
    if len(parts) == 6 and parts[4] in _JAVA_ZONES:
        try:
            local = dt.datetime.strptime(" ".join(parts[1:4] + parts[5:]), "%b %d %H:%M:%S %Y")
        except ValueError:
            return None
        utc = local - dt.timedelta(hours=_JAVA_ZONES[parts[4]])
        return utc.replace(tzinfo=dt.timezone.utc).isoformat()
    try:
        return parsedate_to_datetime(text).astimezone(dt.timezone.utc).isoformat()
    except (TypeError, ValueError):
        return None

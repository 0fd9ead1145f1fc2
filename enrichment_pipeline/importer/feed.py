"""Apply Enhetsregisteret's change feed (`/oppdateringer/enheter`) to `companies`, page by page.

    read the cursor (one short query)
    -> fetch a page of updates, then the current state of every unit it names (no connection held)
    -> write the page's changes and the new cursor in one short transaction
    -> stop at the end of the feed, or when the time budget is spent (a sensor tick is bounded)

`Ny` and `Endring` fetch the unit as the API has it now and upsert it (a unit the API now reports
deleted is marked deleted; 410 is a removal); `Sletting` marks the unit deleted, never purging it;
`Fjernet` purges the unit and everything enriched about it. Within a page only a unit's last
update counts. A page is applied whole or not at all: when the feed or a unit cannot be read, the
page is left for the next try and the cursor stays where it was, so nothing is lost and, since
every write is idempotent, nothing is applied twice in effect.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.errors import FeedError
from enrichment_pipeline.importer.validate import typed
from enrichment_pipeline.registers.clients import BrregClient, embedded
from enrichment_pipeline.registers.http import Fetched, map_concurrent
from enrichment_pipeline.store import changes as store
from enrichment_pipeline.store.companies import get_setting
from enrichment_pipeline.store.changes import PageWrite, UnitUpsert

log = logging.getLogger(__name__)

PAGE_SIZE = 500
# Without a cursor or a known build time of the dump, start this long before the last import:
# replaying a few updates twice costs a few calls and changes nothing.
FIRST_SYNC_OVERLAP = dt.timedelta(days=1)
KINDS = ("Ny", "Endring", "Sletting", "Fjernet", "Ukjent")


@dataclass(frozen=True)
class FeedItem:
    oppdateringsid: int
    orgnr: str
    endringstype: str


@dataclass
class SyncReport:
    """What one sync did; `position` is the id of the last update applied."""

    start: str = ""
    position: int | None = None
    pages: int = 0
    updates: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    upserted: int = 0
    marked_deleted: int = 0
    removed: int = 0
    unknown_units: int = 0
    invalid_units: int = 0
    changed_batches: set[int] = field(default_factory=set)
    more: bool = False
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start, "position": self.position, "pages": self.pages, "updates": self.updates,
            "kinds": dict(self.kinds), "upserted": self.upserted, "marked_deleted": self.marked_deleted,
            "removed": self.removed, "unknown_units": self.unknown_units, "invalid_units": self.invalid_units,
            "changed_batches": len(self.changed_batches), "more": self.more, "skipped": self.skipped,
        }


def _feed_time(when: dt.datetime) -> str:
    """`yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`, as the feed's `dato` parameter wants it."""
    utc = when.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _first_page_query(postgres: PostgresResource, from_id: int | None, holder: object) -> dict[str, Any] | None:
    """Where the feed is read from: after the stored cursor; else `from_id`; else from the dump's build
    time (or a day before the last import). None before any import: the feed only makes sense on top of one."""
    position = store.feed_position(postgres, holder)
    if position is not None:
        return {"from_id": position + 1, "start": f"after update {position}", "position": position}
    if from_id is not None:
        return {"from_id": from_id, "start": f"update {from_id} (--from-id)"}
    last = store.last_import(postgres, holder)
    if last is None:
        return None
    if last["dump_built_at"]:
        since = dt.datetime.fromisoformat(last["dump_built_at"])
        return {"dato": _feed_time(since), "start": f"the dump's build time {_feed_time(since)}"}
    since = last["started_at"] - FIRST_SYNC_OVERLAP
    return {"dato": _feed_time(since), "start": f"a day before the last import, {_feed_time(since)}"}


def _items(fetched: Fetched) -> list[FeedItem]:
    if fetched.error is not None or fetched.status != 200:
        raise FeedError(f"the change feed at {fetched.url} could not be read: {fetched.error or f'HTTP {fetched.status}'}")
    items = []
    for raw in embedded(fetched.body, "oppdaterteEnheter"):
        try:
            items.append(FeedItem(int(raw["oppdateringsid"]), str(raw["organisasjonsnummer"]), str(raw.get("endringstype") or "Ukjent")))
        except (KeyError, TypeError, ValueError):
            raise FeedError(f"the change feed at {fetched.url} sent an update without id or number: {str(raw)[:200]}") from None
    return sorted(items, key=lambda item: item.oppdateringsid)


def _plan_page(brreg: BrregClient, items: list[FeedItem], max_in_flight: int, report: SyncReport) -> PageWrite:
    """Decide what the page changes; fetches the units it needs, with no database connection held."""
    last: dict[str, FeedItem] = {}
    for item in items:
        report.kinds[item.endringstype] += 1
        last[item.orgnr] = item  # within a page, a unit's last update wins
    to_fetch = [i.orgnr for i in last.values() if i.endringstype in ("Ny", "Endring")]
    fetched = dict(zip(to_fetch, map_concurrent(brreg.unit, to_fetch, max_in_flight)))
    upserts: list[UnitUpsert] = []
    deleted = [i.orgnr for i in last.values() if i.endringstype == "Sletting"]
    removed = [i.orgnr for i in last.values() if i.endringstype == "Fjernet"]
    for orgnr, answer in fetched.items():
        if answer.error is not None:
            raise FeedError(f"unit {orgnr} from the change feed could not be fetched ({answer.error}); "
                            "the page is left for the next try")
        if answer.status == 410:
            removed.append(orgnr)
        elif answer.status == 404:
            report.unknown_units += 1
        elif isinstance(answer.body, dict) and "slettedato" in answer.body:
            deleted.append(orgnr)
        else:
            columns, reason = typed(answer.body) if isinstance(answer.body, dict) else (None, "not an object")
            if columns is not None:
                upserts.append(UnitUpsert(columns, answer.body))
            else:
                report.invalid_units += 1
                log.warning("unit %s from the change feed is not a valid unit (%s); kept as it was", orgnr, reason)
    return PageWrite(upserts, deleted, removed, position=items[-1].oppdateringsid)


def sync_updates(
    postgres: PostgresResource, brreg: BrregClient, *, from_id: int | None = None, page_size: int = PAGE_SIZE,
    time_budget_s: float | None = None, max_in_flight: int = 8, holder: object = None,
    progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """Apply the feed from the stored cursor to its end (or until `time_budget_s` is spent)."""
    started = time.monotonic()
    report = SyncReport()
    query = _first_page_query(postgres, from_id, holder)
    if query is None:
        report.skipped = "no import yet: the change feed is applied on top of a full import"
        return report
    report.start = query.pop("start")
    report.position = query.pop("position", None)  # where the feed stands if this sync applies nothing
    batches = int(get_setting(postgres, "batches", holder) or 1)
    while True:
        items = _items(brreg.updates(size=page_size, **query))
        if not items:
            break
        page = _plan_page(brreg, items, max_in_flight, report)
        changed = store.write_page(postgres, page, batches, holder)
        report.pages += 1
        report.updates += len(items)
        report.upserted += len(page.upserts)
        report.marked_deleted += len(page.deleted)
        report.removed += len(page.removed)
        report.changed_batches.update(changed)
        report.position = page.position
        if progress is not None:
            progress(report)
        if len(items) < page_size:
            break
        query = {"from_id": page.position + 1}
        if time_budget_s is not None and time.monotonic() - started > time_budget_s:
            report.more = True
            break
    return report

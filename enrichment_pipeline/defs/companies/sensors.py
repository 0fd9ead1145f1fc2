"""The change-feed sensor: new, changed, deleted and removed units, applied within minutes.

Each tick: acknowledge the batches the previous tick reported (its cursor is stored, so its events
are), apply the feed from the cursor kept in the project's database (pages of `SENSOR_PAGE_SIZE`,
within `TICK_BUDGET_S`), and report every batch still waiting in the outbox as a materialization
of `company_changes`, which makes declarative automation re-enrich exactly those batches.

The feed position lives in the database, written with each page's changes, so `enrichment-pipeline
sync-updates` and this sensor share it; the Dagster cursor only says what this sensor reported.
A tick that fails in the middle of a page leaves that page for the next tick and loses nothing.
"""

import json

import dagster as dg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.companies.assets import change_events
from enrichment_pipeline.importer.feed import sync_updates
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.store import changes

CHANGE_FEED_SENSOR = "register_change_feed"
# At the real register's polite 8 requests/s, a page of 100 updates takes about 13 s to fetch; a
# tick stays well inside Dagster's 60 s sensor timeout.
SENSOR_PAGE_SIZE = 100
TICK_BUDGET_S = 30.0


def reported_in(cursor: str | None) -> dict[int, int]:
    """The batches (and their outbox versions) a tick reported, from its cursor."""
    if not cursor:
        return {}
    reported = json.loads(cursor).get("reported", {})
    return {int(batch): int(version) for batch, version in reported.items()}


@dg.sensor(
    name=CHANGE_FEED_SENSOR,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Applies Enhetsregisteret's change feed and reports which company batches changed.",
)
def register_change_feed(
    context: dg.SensorEvaluationContext, postgres: PostgresResource, registers: RegistersResource
) -> dg.SensorResult:
    holder = f"sensor:{CHANGE_FEED_SENSOR}"
    changes.acknowledge(postgres, reported_in(context.cursor), holder)
    report = sync_updates(postgres, registers.brreg(), page_size=SENSOR_PAGE_SIZE, time_budget_s=TICK_BUDGET_S,
                          max_in_flight=registers.in_flight(), holder=holder)
    pending = changes.pending_batches(postgres, holder)
    cursor = json.dumps({"feed_position": report.position, "reported": {str(b): v for b, v in pending.items()}})
    if report.skipped:
        context.log.info(report.skipped)
    elif report.updates:
        context.log.info(f"applied {report.updates} updates in {report.pages} page(s) from {report.start} "
                         f"({dict(report.kinds)}); feed at {report.position}{', more to come' if report.more else ''}")
    if not pending:
        return dg.SensorResult(skip_reason=report.skipped or f"no new updates (feed at {report.position})", cursor=cursor)
    return dg.SensorResult(asset_events=change_events(pending), cursor=cursor)

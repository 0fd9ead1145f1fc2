"""Helpers the database fault tests share: expected outcomes from the generated data, table counts, locks.

What every company's `company_roles` outcome must be follows from the generated register (the
unit's state and whether it has roles), so a test can compare the table with it row by row after
a fault instead of only checking that nothing crashed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline_tests.conftest import roles_answers

ROLES = "company_roles"


def expected_roles(generated: Path, orgnrs: set[str]) -> dict[str, str]:
    """The roles outcome the local registers service gives each company: gone, deleted, ok or not_found."""
    return {orgnr: outcome for orgnr, (outcome, _) in roles_answers(generated, orgnrs).items()}


def companies_in(postgres: PostgresResource, batches: list[int]) -> set[str]:
    with postgres.connection() as conn:
        rows = conn.execute("SELECT orgnr FROM companies WHERE batch = ANY(%s)", [batches]).fetchall()
    return {orgnr for (orgnr,) in rows}


def outcomes(postgres: PostgresResource, source: str = ROLES) -> dict[str, str]:
    with postgres.connection() as conn:
        rows = conn.execute("SELECT orgnr, outcome FROM enrichments WHERE source = %s", [source]).fetchall()
    return dict(rows)


def table_counts(postgres: PostgresResource) -> dict[str, int]:
    """Rows in every table of the project's schema, and how many (orgnr, source) pairs repeat."""
    from psycopg import sql

    with postgres.connection() as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version' "
            "ORDER BY tablename").fetchall()]
        counts = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                  for t in tables}
        counts["duplicate enrichments"] = conn.execute(
            "SELECT count(*) - count(DISTINCT (orgnr, source)) FROM enrichments").fetchone()[0]
    return counts


def middle_company(postgres: PostgresResource, batches: list[int]) -> str:
    """The median organisation number of `batches`: a step writing them in order has written about half before it."""
    ordered = sorted(companies_in(postgres, batches))
    return ordered[len(ordered) // 2]


@contextmanager
def row_locked(postgres: PostgresResource, orgnr: str, source: str = ROLES) -> Iterator[psycopg.Connection]:
    """Hold a row lock on (orgnr, source) in `enrichments` (inserting the row as a previous failed lookup).

    A step's write transaction upserts its companies in order, so it blocks on this row with the
    rows before it already written but not committed: a write frozen in its middle, for as long as
    the test needs to inject a fault there. The lock is released when the block ends.
    """
    with postgres.transaction() as conn:
        conn.execute("INSERT INTO enrichments (orgnr, source, outcome, error) VALUES (%s, %s, 'error', 'earlier run') "
                     "ON CONFLICT (orgnr, source) DO NOTHING", [orgnr, source])
    with postgres.connection("tests-row-lock") as conn:
        conn.execute("BEGIN")
        conn.execute("SELECT 1 FROM enrichments WHERE orgnr = %s AND source = %s FOR UPDATE", [orgnr, source])
        try:
            yield conn
        finally:
            with suppress(psycopg.Error):  # the fault may have ended this session already
                conn.execute("ROLLBACK")


def blocked_writers(observer: PostgresResource, app_prefix: str) -> list[tuple[int, str, int | None, str | None]]:
    """(pid, application_name, client_port, backend_xid) of backends of `app_prefix` waiting on a row lock."""
    with observer.connection() as conn:
        return conn.execute(
            "SELECT pid, application_name, client_port, backend_xid::text FROM pg_stat_activity "
            "WHERE application_name LIKE %s AND wait_event_type = 'Lock' ORDER BY pid",
            [app_prefix + "%"]).fetchall()


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"{what}: not within {timeout_s:g} s")


def step_events(instance: dg.DagsterInstance, run_id: str, step_key: str) -> list[dg.EventLogEntry]:
    return [e for e in instance.all_logs(run_id) if e.dagster_event is not None and e.dagster_event.step_key == step_key]


def retries_of(events: list[dg.EventLogEntry]) -> list[Any]:
    """The StepRetryData (error, seconds_to_wait) of every time the step was put up for retry."""
    return [e.dagster_event.step_retry_data for e in events
            if e.dagster_event is not None and e.dagster_event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]


def count_by(events: list[dg.EventLogEntry], event_type: dg.DagsterEventType) -> int:
    return sum(1 for e in events if e.dagster_event is not None and e.dagster_event.event_type == event_type)


def root_cause(error: Any) -> Any:  # noqa: ANN401 - Dagster's SerializableErrorInfo
    """The exception a step really raised, under Dagster's wrappers (RetryRequestedFromPolicy, ...)."""
    while error.cause is not None:
        error = error.cause
    return error


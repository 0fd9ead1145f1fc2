"""Connection faults between the project and a real PostgreSQL: bounded errors, then recovery.

Faults, each injected for real against the fault suite's dedicated server:

- a TCP proxy that stops forwarding for longer than `acquire_timeout_s`, then resumes: the step
  asking for a connection gets a clear `PoolExhausted` naming the pool and the server within
  `acquire_timeout_s` (the pool's health check on checkout is bounded too), and the next one works;
- a listener that never answers (its accept queue full, or accepting and swallowing every byte):
  a connect timeout after `connect_timeout_s`, not a hang;
- a step that leaks every connection of its run's pool: the leak warning names the holder and where
  it acquired them; the next step times out cleanly (`PoolExhausted` naming the pool, within
  `acquire_timeout_s`), is retried by its `RetryPolicy` and writes every company's exact outcome;
- `idle_in_transaction_session_timeout` kills the session of a holder that left a transaction
  open: its write is lost and it gets the server's error, while steps queued for the pool's only
  connection are still served.
"""

# No `from __future__ import annotations`: Dagster reads the asset's `context` annotation at definition.
import threading
import time
from pathlib import Path

import dagster as dg
import psycopg.errors
import pytest

from enrichment_pipeline.db.resource import PostgresResource, application_name
from enrichment_pipeline.db.urls import DatabaseUrl
from enrichment_pipeline.defs.companies.partitions import COMPANY_BATCHES
from enrichment_pipeline.defs.lookups.company_roles import company_roles
from enrichment_pipeline.defs.lookups.policies import LOOKUP_BACKFILL
from enrichment_pipeline.errors import DatabaseUnavailable, PoolExhausted
from enrichment_pipeline.importer.run import import_file
from enrichment_pipeline_tests.conftest import BATCHES, StartService, local_registers, make_resource
from enrichment_pipeline_tests.faults.database_support import (
    companies_in,
    count_by,
    expected_roles,
    outcomes,
    root_cause,
    step_events,
    wait_for,
)
from enrichment_pipeline_tests.faults.proxy import DeafListener, TcpProxy

ACQUIRE_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 2.0  # libpq's (and psycopg's) smallest connect timeout
RANGE = ("b0000", "b0003")  # one run over four batches, as a backfill run covers many
RANGE_BATCHES = [0, 1, 2, 3]


def _through(url: DatabaseUrl, port: int) -> str:
    return DatabaseUrl(url.user, url.password, "127.0.0.1", port, url.database).render(show_password=True)


# -- a server that stops answering ------------------------------------------------------------

def test_a_proxy_that_stops_forwarding_fails_checkout_within_acquire_timeout_naming_the_pool_then_recovers(
    fault_db_url: DatabaseUrl,
) -> None:
    with TcpProxy(("127.0.0.1", fault_db_url.port)) as proxy:
        resource = make_resource(_through(fault_db_url, proxy.port), pool_max=2, acquire_timeout_s=ACQUIRE_TIMEOUT_S,
                                 connect_timeout_s=CONNECT_TIMEOUT_S)
        with resource.opened("stalled") as pg:
            with pg.connection() as conn:
                conn.execute("SELECT 1")  # one idle connection stays in the pool: its checkout check must not hang
            proxy.pause()
            started = time.monotonic()
            with pytest.raises(PoolExhausted) as failure:
                with pg.connection():
                    pass
            elapsed = time.monotonic() - started
            time.sleep(max(0.0, ACQUIRE_TIMEOUT_S * 1.5 - elapsed))  # the outage outlasts acquire_timeout_s
            proxy.resume()
            resumed = time.monotonic()
            with pg.transaction() as conn:
                conn.execute("INSERT INTO pipeline_settings (key, value) VALUES ('after-stall', 'ok')")
            recovered_s = time.monotonic() - resumed
            stats = pg.stats()
        with make_resource(fault_db_url.render(show_password=True), pool_max=1).opened("tests-check") as direct:
            with direct.connection() as conn:
                kept = conn.execute("SELECT value FROM pipeline_settings WHERE key = 'after-stall'").fetchall()

    assert str(failure.value) == (
        "pool 'enrichment:stalled::' gave no connection within 2 s (acquire_timeout_s): 0 of pool_max=2 in use, "
        f"and the server at 127.0.0.1:{proxy.port}/{fault_db_url.database} gave no working connection in time "
        "(the server did not answer the health check within 2 s)")
    assert ACQUIRE_TIMEOUT_S <= elapsed < ACQUIRE_TIMEOUT_S + 0.5
    assert recovered_s < ACQUIRE_TIMEOUT_S
    assert kept == [("ok",)]
    assert (stats.timeouts, stats.in_use) == (1, 0)


@pytest.mark.parametrize("opened_by", ["a command", "a run"])
@pytest.mark.parametrize("listener", ["accept-queue-full", "accepts-and-never-answers"])
def test_a_listener_that_never_answers_gives_a_connect_timeout_not_a_hang(listener: str, opened_by: str) -> None:
    run = opened_by == "a run"  # a run's resource waits up to acquire_timeout_s for a server that may come back
    with DeafListener() as deaf, TcpProxy(("127.0.0.1", deaf.port)) as swallower:
        swallower.blackhole()
        port = deaf.port if listener == "accept-queue-full" else swallower.port
        resource = make_resource(f"postgresql://enrichment:not-used@127.0.0.1:{port}/enrichment",
                                 connect_timeout_s=CONNECT_TIMEOUT_S, acquire_timeout_s=3)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as failure:
            resource.open("deaf", wait_for_server=run)
        elapsed = time.monotonic() - started
        accepted = swallower.accepted
    attempts = 2 if run else 1  # a run tries again after 0.25 s, then its 3 s are spent
    assert str(failure.value) == (
        f"cannot connect to PostgreSQL at 127.0.0.1:{port}/enrichment as enrichment: connection timeout expired; "
        "check that the host is reachable and the port is right (connect timed out)")
    assert attempts * CONNECT_TIMEOUT_S <= elapsed < attempts * CONNECT_TIMEOUT_S + 0.75
    assert accepted == (attempts if listener == "accepts-and-never-answers" else 0)


# -- a step that leaks its run's connections ----------------------------------------------------

LEAK_THRESHOLD_S = 1.0


@dg.asset(key="connection_leak", partitions_def=COMPANY_BATCHES, backfill_policy=LOOKUP_BACKFILL,
          op_tags={"dagster/priority": "10"})  # runs before the lookup in the same run
def connection_leak(context: dg.AssetExecutionContext, postgres: PostgresResource) -> None:
    """Takes every connection of the run's pool on a thread that outlives the step, like a forgotten
    consumer, and lets go only after the next step has had time to give up waiting."""
    settings = postgres.settings()
    hold_s = settings.acquire_timeout_s + 1.5

    def hold() -> None:
        with postgres.connection(context), postgres.connection(context):
            time.sleep(hold_s)

    threading.Thread(target=hold, name="leaked-connections", daemon=True).start()
    wait_for(lambda: postgres.stats().in_use == settings.pool_max, 5, "the leak holds the whole pool")


@pytest.fixture()
def imported(fault_postgres: PostgresResource, generated: Path) -> PostgresResource:
    import_file(fault_postgres, generated / "enheter.json.gz", source_label="faults", batches=BATCHES)
    return fault_postgres


def test_a_leaked_pool_is_named_by_the_leak_warning_and_the_starved_step_times_out_then_retries(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    fault_db_url: DatabaseUrl,
) -> None:
    service = registers_service(generated)
    resource = make_resource(fault_db_url.render(show_password=True), pool_max=2, acquire_timeout_s=ACQUIRE_TIMEOUT_S,
                             leak_threshold_s=LEAK_THRESHOLD_S)
    result = dg.materialize(
        [connection_leak, company_roles], instance=instance,
        resources={"postgres": resource, "registers": local_registers(service)},
        tags={"dagster/asset_partition_range_start": RANGE[0], "dagster/asset_partition_range_end": RANGE[1]},
    )
    run_id = result.run_id
    leak_holder = f"enrichment:connection_leak:{RANGE[0]}..{RANGE[1]}:{run_id[:8]}"
    pool = application_name(result.dagster_run.job_name, None, run_id)
    warnings = [e.user_message for e in instance.all_logs(run_id) if "leak_threshold_s" in e.user_message]
    roles = step_events(instance, run_id, "company_roles")
    started = next(e.timestamp for e in roles if e.dagster_event.event_type == dg.DagsterEventType.STEP_START)
    up_for_retry = [e for e in roles if e.dagster_event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    batch = companies_in(imported, RANGE_BATCHES)

    assert result.success
    assert len(warnings) == 2  # one per leaked connection, once each
    assert all(f"by {leak_holder}, acquired at test_database_connections.py:" in w and "in hold" in w for w in warnings)
    assert len(up_for_retry) == 1 and count_by(roles, dg.DagsterEventType.STEP_SUCCESS) == 1
    error = root_cause(up_for_retry[0].dagster_event.step_retry_data.error)
    assert error.cls_name == "PoolExhausted"
    assert error.message.strip().endswith(
        f"pool '{pool}' gave no connection within 2 s (acquire_timeout_s): 2 of pool_max=2 in use")
    assert ACQUIRE_TIMEOUT_S <= up_for_retry[0].timestamp - started < ACQUIRE_TIMEOUT_S + 1.5
    assert outcomes(imported) == expected_roles(generated, batch)


# -- a session killed by idle_in_transaction_session_timeout ------------------------------------

def test_a_session_killed_for_idling_in_a_transaction_still_lets_waiting_steps_be_served(
    fault_postgres: PostgresResource, fault_db_url: DatabaseUrl,
) -> None:
    resource = make_resource(fault_db_url.render(show_password=True), pool_max=1, acquire_timeout_s=5,
                             idle_in_transaction_timeout_ms=300)
    served: dict[int, str] = {}
    failed: list[BaseException] = []

    def waiting_step(n: int) -> None:
        try:
            with pg.transaction(f"waiting-step-{n}") as conn:
                conn.execute("INSERT INTO pipeline_settings (key, value) VALUES (%s, 'served')", [f"waiter-{n}"])
                served[n] = conn.execute("SELECT current_setting('application_name')").fetchone()[0]
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions below
            failed.append(exc)

    with resource.opened("idle-tx") as pg:
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout) as killed:
            with pg.connection("forgetful-step") as conn:
                pid = conn.info.backend_pid
                before = pg.stats()
                conn.execute("BEGIN")
                conn.execute("INSERT INTO pipeline_settings (key, value) VALUES ('forgetful', 'never committed')")
                waiters = [threading.Thread(target=waiting_step, args=(n,)) for n in range(3)]
                for waiter in waiters:
                    waiter.start()
                wait_for(lambda: not _backend_alive(fault_postgres, pid), 5, "the server ends the idle transaction")
                conn.execute("COMMIT")
        for waiter in waiters:
            waiter.join(10)
        stats = pg.stats().minus(before)
    with fault_postgres.connection() as conn:
        rows = dict(conn.execute("SELECT key, value FROM pipeline_settings").fetchall())

    assert "idle-in-transaction timeout" in str(killed.value)
    assert failed == []
    assert served == {n: f"enrichment:waiting-step-{n}::" for n in range(3)}
    assert rows == {f"waiter-{n}": "served" for n in range(3)}  # and nothing of the killed transaction
    assert (stats.acquisitions, stats.waits, stats.timeouts, stats.in_use) == (3, 3, 0, 0)


def _backend_alive(observer: PostgresResource, pid: int) -> bool:
    with observer.connection() as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0])

"""Faults in the middle of runs and backfills, on the project's data server: nothing lost, nothing doubled.

Faults, real ones, on the fault suite's dedicated PostgreSQL:

- `pg_terminate_backend` on every project connection (application_name LIKE 'enrichment:%') while a
  run over several company batches is in the middle of its write;
- the server restarted (a real fast stop and start) while every run of a multi-batch backfill is
  in the middle of its write;
- the run worker killed with SIGKILL in the middle of its write;
- the server down while a run starts (resource initialization, which no RetryPolicy retries).

A write is caught in its middle deterministically: the test holds a row lock on one company of the
run's batches (stored as an earlier failed lookup), so the step's one write transaction blocks on
it with the rows before it written but not committed (pg_stat_activity shows the backend waiting
on the lock with a transaction id of its own), and the fault strikes then.

Outcome: the step fails and its RetryPolicy (exponential backoff) runs it again, or after the
SIGKILL a re-run does, and a starting run waits for the server (up to acquire_timeout_s, a wrong
password not at all); the run or backfill completes; every company of the batches has exactly the
outcome the registers give it, once; every other table keeps its count; a killed write leaves
nothing of its batch behind.

The restart and SIGKILL tests run a real `dagster dev` (webserver, daemon, code server, run
workers), driven through GraphQL as the UI does: a backfill of every batch, a run of the main job
over a range of batches, "Re-execute from failure". Only the project's data server is restarted:
Dagster's own storage stays on the normal test server, in a database of its own, so these tests
show the project's steps surviving, not Dagster's storage. The change-feed and automation sensors
are stopped, so only the tests start runs (and the tests check that no other run started).
"""

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import psutil
import pytest
from psycopg import sql

from enrichment_pipeline import settings
from enrichment_pipeline.budget.local_dagster import LocalDagster, local_registers_env
from enrichment_pipeline.budget.pools import ensure_pool_limits
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.db.urls import DatabaseUrl
from enrichment_pipeline.defs.companies.partitions import ensure_batch_partitions
from enrichment_pipeline.defs.lookups.company_roles import company_roles
from enrichment_pipeline.defs.lookups.jobs import ENRICH
from enrichment_pipeline.errors import DatabaseUnavailable
from enrichment_pipeline.importer.run import import_file
from enrichment_pipeline.registers.service import RegistersService
from enrichment_pipeline_tests.conftest import BATCHES, StartService, local_registers, make_resource
from enrichment_pipeline_tests.faults.conftest import DedicatedServer, empty_project_tables
from enrichment_pipeline_tests.faults.database_support import (
    ROLES,
    blocked_writers,
    companies_in,
    count_by,
    expected_roles,
    middle_company,
    outcomes,
    retries_of,
    root_cause,
    row_locked,
    step_events,
    table_counts,
    wait_for,
)

LOCATION = "enrichment_pipeline"  # workspace.yaml
RANGE = ("b0000", "b0003")  # one run over four batches, as a backfill run covers many
RANGE_BATCHES = [0, 1, 2, 3]
BACKFILL_BATCHES = 100  # 3,000 units in batches of 30: a backfill is two runs of 50 batches
RUN_HALVES = (list(range(0, 50)), list(range(50, 100)))
RETRY_DELAY_S = 5.0  # LOOKUP_RETRY: the first retry waits 5 s, jittered by up to +-5 s
# What a step sees when the server ends its session mid-write: the server's own message when libpq
# read it before the socket closed, else libpq's.
SERVER_GONE = {"AdminShutdown": "terminating connection due to administrator command",
               "OperationalError": "server closed the connection unexpectedly"}


def _server_ended_the_session(error: object) -> bool:
    cause = root_cause(error)
    return cause.cls_name in SERVER_GONE and SERVER_GONE[cause.cls_name] in cause.message


def _writers_in_their_write(observer: PostgresResource, runs: int) -> list[tuple[int, str, int | None, str | None]]:
    """The lookup backends blocked on the test's lock after writing rows (a transaction id): `runs` of them, or none."""
    writers = [w for w in blocked_writers(observer, f"enrichment:{ROLES}:") if w[3] is not None]
    return writers if len(writers) == runs else []


def _live_companies(postgres: PostgresResource) -> int:
    with postgres.connection() as conn:
        return int(conn.execute("SELECT count(*) FROM companies WHERE deleted_at IS NULL").fetchone()[0])


class _RolesRun:
    """`company_roles` over the batches of RANGE in one in-process run, on a thread: the test strikes meanwhile.

    `instance` is the root conftest's, which knows the BATCHES company batches."""

    def __init__(self, instance: dg.DagsterInstance, url: DatabaseUrl, service: RegistersService, **pool: object) -> None:
        self._results: list[dg.ExecuteInProcessResult] = []
        resources = {"postgres": make_resource(url.render(show_password=True), pool_max=2, **pool),
                     "registers": local_registers(service)}
        tags = {"dagster/asset_partition_range_start": RANGE[0], "dagster/asset_partition_range_end": RANGE[1]}
        self._thread = threading.Thread(name="run-under-fault", target=lambda: self._results.append(dg.materialize(
            [company_roles], instance=instance, resources=resources, tags=tags, raise_on_error=False)))

    def start(self) -> None:
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout_s: float = 60) -> dg.ExecuteInProcessResult:
        self._thread.join(timeout_s)
        [result] = self._results
        return result


# -- every project connection terminated in the middle of a run ---------------------------------

def _terminate_project_connections(observer: PostgresResource, keep: int) -> list[tuple[int, str]]:
    """pg_terminate_backend on every project connection but the observer's own and `keep` (the test's lock)."""
    with observer.connection() as conn:
        victims = conn.execute(
            "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE 'enrichment:%%' "
            "AND pid <> pg_backend_pid() AND pid <> %s", [keep]).fetchall()
        done = conn.execute("SELECT pid FROM unnest(%s::int[]) AS pid WHERE pg_terminate_backend(pid)",
                            [[pid for pid, _ in victims]]).fetchall()
    return [v for v in victims if (v[0],) in done]


def test_terminating_every_project_connection_mid_write_fails_the_step_retryably_and_the_run_completes(
    fault_postgres: PostgresResource, generated: Path, registers_service: StartService, fault_db_url: DatabaseUrl,
    instance: dg.DagsterInstance,
) -> None:
    import_file(fault_postgres, generated / "enheter.json.gz", source_label="faults", batches=BATCHES)
    before = table_counts(fault_postgres)
    batch = companies_in(fault_postgres, RANGE_BATCHES)
    service = registers_service(generated)
    run = _RolesRun(instance, fault_db_url, service)
    with row_locked(fault_postgres, middle_company(fault_postgres, RANGE_BATCHES)) as lock:
        run.start()
        [writer] = wait_for(lambda: _writers_in_their_write(fault_postgres, 1), 60, "the run blocked mid-write")
        terminated = _terminate_project_connections(fault_postgres, keep=lock.info.backend_pid)
    result = run.result()
    roles = step_events(instance, result.run_id, ROLES)
    up_for_retry = retries_of(roles)

    assert (writer[0], writer[1]) in terminated
    assert result.success
    assert len(up_for_retry) == 1 and count_by(roles, dg.DagsterEventType.STEP_SUCCESS) == 1
    assert _server_ended_the_session(up_for_retry[0].error), up_for_retry[0].error
    assert 0 <= up_for_retry[0].seconds_to_wait <= 2 * RETRY_DELAY_S
    assert outcomes(fault_postgres) == expected_roles(generated, batch)
    assert table_counts(fault_postgres) == {**before, "enrichments": len(batch)}


# -- a run that starts while the server restarts ---------------------------------------------------

def test_a_run_starting_while_the_server_is_down_waits_for_it_and_completes(
    fault_postgres: PostgresResource, generated: Path, registers_service: StartService, fault_db_url: DatabaseUrl,
    dedicated_server: DedicatedServer, instance: dg.DagsterInstance,
) -> None:
    import_file(fault_postgres, generated / "enheter.json.gz", source_label="faults", batches=BATCHES)
    before = table_counts(fault_postgres)
    batch = companies_in(fault_postgres, RANGE_BATCHES)
    service = registers_service(generated)
    run = _RolesRun(instance, fault_db_url, service, acquire_timeout_s=10)
    dedicated_server.stop()
    run.start()
    try:
        wait_for(lambda: _waiting_for_the_server(instance) or run.done(), 30, "the run starts")
    finally:
        dedicated_server.start()
    result = run.result()
    waits = _waiting_for_the_server(instance)

    assert result.success
    assert waits == [f"PostgreSQL at 127.0.0.1:{fault_db_url.port}/{fault_db_url.database} gives no connection "
                     f"(connection failed: connection to server at \"127.0.0.1\", port {fault_db_url.port} failed: "
                     "Connection refused Is the server running on that host and accepting TCP/IP connections?); "
                     "waiting up to 10 s (acquire_timeout_s) for it"]
    assert outcomes(fault_postgres) == expected_roles(generated, batch)
    assert table_counts(fault_postgres) == {**before, "enrichments": len(batch)}


def test_a_run_with_a_wrong_password_is_not_kept_waiting(fault_db_url: DatabaseUrl) -> None:
    wrong = DatabaseUrl(fault_db_url.user, "not-the-password", fault_db_url.host, fault_db_url.port, fault_db_url.database)
    resource = make_resource(wrong.render(show_password=True), acquire_timeout_s=10)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="password authentication failed"):
        resource.open("wrong-password", wait_for_server=True)  # what a run's resource initialization does
    assert time.monotonic() - started < 2.0


def _waiting_for_the_server(instance: dg.DagsterInstance) -> list[str]:
    return [e.user_message for run in instance.get_runs() for e in instance.all_logs(run.run_id)
            if "gives no connection" in (e.user_message or "")]


# -- a real daemon: backfills through a restart and a SIGKILL -----------------------------------

_LAUNCH_RUN = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }
"""
_REEXECUTE = """
mutation($params: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }
"""
@dataclass
class Daemon:
    dagster: LocalDagster
    instance: dg.DagsterInstance
    log_path: Path
    launched: list[str] = field(default_factory=list)

    def launch(self, assets: list[str], title: str) -> str:
        """A backfill of every batch of `assets`, as the UI's "Materialize all partitions" launches it."""
        backfill_id = self.dagster.launch_backfill(assets, title=title)
        self.launched.append(backfill_id)
        return backfill_id

    def launch_run(self, asset: str, partition_range: tuple[str, str]) -> str:
        """One run of `asset` over a range of batches in the project's main job, as the UI's launchpad starts it."""
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "jobName": ENRICH,
                         "assetSelection": [{"path": [asset]}]},
            "executionMetadata": {"tags": [{"key": "dagster/asset_partition_range_start", "value": partition_range[0]},
                                           {"key": "dagster/asset_partition_range_end", "value": partition_range[1]}]},
        }
        return self._launched(self.dagster.graphql(_LAUNCH_RUN, {"params": params})["launchRun"])

    def reexecute_from_failure(self, run_id: str) -> str:
        """The UI's "Re-execute from failure"."""
        params = {"parentRunId": run_id, "strategy": "FROM_FAILURE"}
        return self._launched(self.dagster.graphql(_REEXECUTE, {"params": params})["launchRunReexecution"])

    def wait_run(self, run_id: str, timeout_s: float) -> dg.DagsterRun:
        return wait_for(lambda: (run := self.instance.get_run_by_id(run_id)) is not None and run.is_finished and run,
                        timeout_s, f"run {run_id} finished", interval_s=0.5)

    def runs_not_launched_by_tests(self) -> list[dg.DagsterRun]:
        return [r for r in self.instance.get_runs()
                if r.run_id not in self.launched and r.tags.get("dagster/backfill") not in self.launched]

    def _launched(self, result: dict[str, str | dict[str, str]]) -> str:
        if result["__typename"] != "LaunchRunSuccess":
            raise AssertionError(f"launch refused: {result}")
        run_id = str(result["run"]["runId"])  # type: ignore[index]
        self.launched.append(run_id)
        return run_id

    def backfill_runs(self, backfill_id: str) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})))

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def _fresh_dagster_database(test_db_url: DatabaseUrl) -> DatabaseUrl:
    """Dagster's storage for these tests: its own database on the normal test server, never restarted."""
    url = test_db_url.with_database(f"{test_db_url.database}_faults_dagster")
    admin = make_resource(test_db_url.with_database("postgres").render(show_password=True), pool_max=1)
    with admin.opened("tests-admin") as pg, pg.connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(url.database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
    return url


@pytest.fixture(scope="module")
def daemon(fault_db_url: DatabaseUrl, test_db_url: DatabaseUrl, generated: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    fault_url = fault_db_url.render(show_password=True)
    with make_resource(fault_url, pool_max=1).opened("tests-faults-reset") as pg:
        empty_project_tables(pg)  # nothing for a sensor's first tick to report
    dagster_url = _fresh_dagster_database(test_db_url)
    service = RegistersService(generated).start()
    env = {
        "DAGSTER_HOME": str(settings.project_root()),
        "ENRICHMENT_DAGSTER_PG_URL": dagster_url.render("psycopg2", show_password=True),
        "DATABASE_URL": fault_url,
        **local_registers_env(service.base_url),
        "ENRICHMENT_PG_IDLE_TIMEOUT_S": "1",
    }
    log_path = tmp_path_factory.mktemp("daemon") / "dagster.log"
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            patch.delenv("DAGSTER_DATABASE_URL", raising=False)
            instance = dg.DagsterInstance.get()
            ensure_batch_partitions(instance, BACKFILL_BATCHES)
            ensure_pool_limits(instance)
            with LocalDagster(env, webserver_overflow=2, log_path=log_path) as dagster:  # sensors stopped
                yield Daemon(dagster, instance, log_path)
            instance.dispose()
    finally:
        service.stop()


def test_a_server_restart_mid_backfill_fails_the_steps_retryably_and_the_backfill_completes(
    daemon: Daemon, fault_postgres: PostgresResource, dedicated_server: DedicatedServer, generated: Path,
) -> None:
    import_file(fault_postgres, generated / "enheter.json.gz", source_label="faults", batches=BACKFILL_BATCHES)
    before = table_counts(fault_postgres)
    everyone = companies_in(fault_postgres, list(range(BACKFILL_BATCHES)))
    victims = [middle_company(fault_postgres, half) for half in RUN_HALVES]
    with row_locked(fault_postgres, victims[0]), row_locked(fault_postgres, victims[1]):
        backfill = daemon.launch([ROLES, "company_profile"], title="restart mid-backfill")
        writers = wait_for(lambda: _writers_in_their_write(fault_postgres, 2), 150, "both runs blocked mid-write")
        dedicated_server.restart()
    status = daemon.dagster.wait_backfill(backfill, timeout_s=240)
    runs = daemon.backfill_runs(backfill)
    roles_runs = [r for r in runs if ROLES in {k.to_user_string() for k in r.asset_selection or ()}]

    assert status == "COMPLETED_SUCCESS", daemon.log_tail()
    assert len(runs) == 2 and {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}  # 50 batches each, both assets
    assert daemon.runs_not_launched_by_tests() == []  # no sensor started a run of its own
    assert {w[1].rsplit(":", 1)[1] for w in writers} == {r.run_id[:8] for r in roles_runs}
    for run in roles_runs:
        events = step_events(daemon.instance, run.run_id, ROLES)
        retries = retries_of(events)
        assert len(retries) == 1 and count_by(events, dg.DagsterEventType.STEP_SUCCESS) == 1
        assert _server_ended_the_session(retries[0].error), retries[0].error
        assert 0 <= retries[0].seconds_to_wait <= 2 * RETRY_DELAY_S
    assert outcomes(fault_postgres) == expected_roles(generated, everyone)
    live = _live_companies(fault_postgres)
    assert table_counts(fault_postgres) == {**before, "enrichments": len(everyone), "company_profiles": live}


def _process_on_local_port(port: int) -> psutil.Process:
    """The process (among this test's descendants) whose TCP connection leaves from `port`."""
    for proc in psutil.Process().children(recursive=True):
        try:
            if any(c.laddr and c.laddr.port == port for c in proc.net_connections(kind="tcp")):
                return proc
        except psutil.Error:
            continue
    raise AssertionError(f"no process of ours owns local port {port}")


def test_a_run_worker_killed_mid_write_leaves_no_partial_batch_and_a_rerun_completes(
    daemon: Daemon, fault_postgres: PostgresResource, generated: Path,
) -> None:
    import_file(fault_postgres, generated / "enheter.json.gz", source_label="faults", batches=BACKFILL_BATCHES)
    before = table_counts(fault_postgres)
    batches = RUN_HALVES[0]
    batch = companies_in(fault_postgres, batches)
    victim = middle_company(fault_postgres, batches)
    with row_locked(fault_postgres, victim):
        run_id = daemon.launch_run(ROLES, (f"b{batches[0]:04d}", f"b{batches[-1]:04d}"))
        [(backend, app, port, _)] = wait_for(lambda: _writers_in_their_write(fault_postgres, 1), 90,
                                             "the run blocked mid-write")
        worker = _process_on_local_port(port)
        os.kill(worker.pid, signal.SIGKILL)
        wait_for(lambda: not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE, 10, "the run worker dies")
    # The orphaned backend now gets the lock, finds its client gone before any COMMIT and rolls back.
    wait_for(lambda: not _backend_exists(fault_postgres, backend), 30, "the killed worker's session ends")
    left_behind = outcomes(fault_postgres)
    killed = daemon.wait_run(run_id, timeout_s=30)
    crash = [e.dagster_event.message for e in daemon.instance.all_logs(run_id)
             if e.dagster_event is not None and "terminated by signal 9 (SIGKILL)" in (e.dagster_event.message or "")]
    rerun_id = daemon.reexecute_from_failure(run_id)
    rerun = daemon.wait_run(rerun_id, timeout_s=90)

    assert app.endswith(run_id[:8]) and worker.pid != os.getpid()
    assert left_behind == {victim: "error"}  # only the earlier outcome: nothing of the killed write
    assert killed.status == dg.DagsterRunStatus.FAILURE and len(crash) == 1, daemon.log_tail()
    assert rerun.status == dg.DagsterRunStatus.SUCCESS, daemon.log_tail()
    assert count_by(step_events(daemon.instance, rerun_id, ROLES), dg.DagsterEventType.STEP_SUCCESS) == 1
    assert outcomes(fault_postgres) == expected_roles(generated, batch)
    assert table_counts(fault_postgres) == {**before, "enrichments": len(batch)}
    assert daemon.runs_not_launched_by_tests() == []


def _backend_exists(observer: PostgresResource, pid: int) -> bool:
    with observer.connection() as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0])

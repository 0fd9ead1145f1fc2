"""Full load, scaled for CI: a backfill of every lookup over every batch with a real daemon.

Real `dagster dev` (webserver, daemon, code server) with the project's dagster.yaml, the backfill
launched through GraphQL as the UI does, pg_stat_activity sampled every 100 ms throughout: the
peak stays within the budget computed from the configuration, and afterwards the project's own
connections fall back to pool_min within the idle bound.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from enrichment_pipeline.budget.check import project_budget
from enrichment_pipeline.budget.local_dagster import ActivitySampler, LocalDagster, local_registers_env
from enrichment_pipeline.budget.pools import POOL_LIMITS, ensure_pool_limits
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.db.urls import DatabaseUrl
from enrichment_pipeline.defs.companies.partitions import ensure_batch_partitions
from enrichment_pipeline.importer.run import import_file
from enrichment_pipeline.instance import dagster_environment
from enrichment_pipeline.sources import SOURCES
from enrichment_pipeline.store import changes
from enrichment_pipeline_tests.conftest import StartService, make_resource

BATCHES = 120  # 3,000 units in batches of 25: three runs of 50 batches per step
IDLE_TIMEOUT_S = 1.0
WEBSERVER_OVERFLOW = 4


def _fresh_dagster_database(url: DatabaseUrl) -> None:
    name = f"{url.database}_dagster"
    with make_resource(url.with_database("postgres").render(show_password=True), pool_max=1).opened("tests-admin") as admin:
        with admin.connection() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_full_backfill_stays_within_the_budget_and_connections_drain_afterwards(
    postgres: PostgresResource, generated: Path, registers_service: StartService, test_db_url: DatabaseUrl,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    url_text = test_db_url.render(show_password=True)
    _fresh_dagster_database(test_db_url)
    import_file(postgres, generated / "enheter.json.gz", source_label="full-load", batches=BATCHES)
    changes.acknowledge(postgres, changes.pending_batches(postgres))  # only the backfill starts runs here
    service = registers_service(generated)

    monkeypatch.setenv("DATABASE_URL", url_text)
    monkeypatch.delenv("ENRICHMENT_DAGSTER_PG_URL", raising=False)
    env = {**dagster_environment(), **local_registers_env(service.base_url),
           "DATABASE_URL": url_text, "ENRICHMENT_PG_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    instance = dg.DagsterInstance.get()
    ensure_batch_partitions(instance, BATCHES)
    assert ensure_pool_limits(instance) or all(
        instance.event_log_storage.get_concurrency_info(p).slot_count == n for p, n in POOL_LIMITS.items())
    budget = project_budget(postgres, webserver_overflow=WEBSERVER_OVERFLOW)
    assert budget.fits

    observer = make_resource(url_text, pool_max=2, leak_threshold_s=3600)
    with observer.opened("harness-observer") as watch, ActivitySampler(
            watch, exclude_prefixes=("enrichment:harness", "enrichment:tests"),
            databases=(test_db_url.database, f"{test_db_url.database}_dagster")) as sampler:
        with LocalDagster(env, webserver_overflow=WEBSERVER_OVERFLOW, log_path=tmp_path / "dagster.log") as dagster:
            backfill = dagster.launch_backfill([*SOURCES, "company_profile"], title="full-load test")
            status = dagster.wait_backfill(backfill, timeout_s=480)
            runs = dagster.runs()
        finished = time.monotonic()
        deadline = finished + PostgresResource().settings().pool_max * IDLE_TIMEOUT_S + IDLE_TIMEOUT_S + 10
        while time.monotonic() < deadline and sampler.samples and sampler.samples[-1][2] > 0:
            time.sleep(0.2)
        drained_ours = sampler.samples[-1][2]
        with watch.connection() as conn:
            leftovers = conn.execute(
                "SELECT application_name, state, backend_start FROM pg_stat_activity "
                "WHERE application_name LIKE 'enrichment:%%' AND application_name NOT LIKE 'enrichment:harness%%' "
                "AND application_name NOT LIKE 'enrichment:tests%%' AND datname = current_database()").fetchall()

    assert status == "COMPLETED_SUCCESS", (tmp_path / "dagster.log").read_text()[-3000:]
    with postgres.connection() as conn:
        # Units the register answers 410 for are purged along the way: count what is live now.
        live = conn.execute("SELECT count(*) FROM companies WHERE deleted_at IS NULL").fetchone()[0]
        covered = dict(conn.execute(
            "SELECT e.source, count(*) FROM enrichments e JOIN companies c USING (orgnr) "
            "WHERE c.deleted_at IS NULL GROUP BY e.source").fetchall())
        profiles = conn.execute("SELECT count(*) FROM company_profiles").fetchone()[0]
    assert live > 2900 and covered == {s: live for s in SOURCES} and profiles == live
    backfill_runs = [r for r in runs if any(t["key"] == "dagster/backfill" for t in r["tags"])]
    assert 0 < len(backfill_runs) <= 2 * (BATCHES // 50 + 1)  # tens of runs at most, never one per batch
    assert len(sampler.samples) > 100
    assert 0 < sampler.peak_total <= budget.worst_case, (sampler.peak_total, budget.derivation())
    assert sampler.peak_ours <= budget.inputs["max_concurrent_runs"] * budget.inputs["pool_max"] + 1
    assert drained_ours == 0, leftovers  # pool_min is 0: nothing of ours stays open once the runs are done

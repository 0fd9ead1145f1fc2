"""The old failure reproduced and beaten in one run, against a PostgreSQL with max_connections = 100.

(a) naive: 7 worker processes, each with its own pool of max 100 and min 2, no idle release and no
    acquire timeout, each running many concurrent batch jobs that hold a connection while they
    wait on simulated HTTP (the design of the systems this project replaces; it deliberately
    bypasses the project's Postgres resource).
(b) managed: the same batches through this project: a real `dagster dev` (daemon, run queue,
    pools, in-process runs with the Postgres resource), backfilled over every batch with the
    registers' HTTP simulated by the local service with latency.

pg_stat_activity is sampled every 100 ms in both phases. Connection errors are counted on the
client side and, for the embedded server, from the server's own log ("too many clients",
"remaining connection slots are reserved"). Churn is new sessions per minute (pg_stat_database).

    .venv/bin/python benchmarks/connection_storm.py [--batches 60] [--latency-ms 40]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from psycopg import sql

from enrichment_pipeline import settings
from enrichment_pipeline.budget.check import project_budget
from enrichment_pipeline.budget.local_dagster import ActivitySampler, LocalDagster, local_registers_env
from enrichment_pipeline.budget.pools import ensure_pool_limits
from enrichment_pipeline.db import connect, migrate
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.db.urls import DatabaseUrl
from enrichment_pipeline.sources import SOURCES

NAIVE_PROCESSES = 7
NAIVE_POOL_MAX = 100
NAIVE_POOL_MIN = 2
NAIVE_THREADS = 30
NAIVE_HOLD_S = 1.0
STORM_DATABASE = "enrichment_storm"
WEBSERVER_OVERFLOW = 4
_SLOT_ERRORS = ("too many clients", "remaining connection slots are reserved")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fresh_database(server: DatabaseUrl) -> DatabaseUrl:
    with PostgresResource(database_url=server.render(show_password=True), pool_max=1).opened("storm-admin") as admin:
        with admin.connection() as conn:
            for name in (STORM_DATABASE, STORM_DATABASE + "_dagster"):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(STORM_DATABASE)))
    url = server.with_database(STORM_DATABASE)
    with PostgresResource(database_url=url.render(show_password=True)).opened("storm-migrate") as pg:
        migrate.upgrade(pg)
    return url


def _sessions(observer: PostgresResource) -> int:
    with observer.connection() as conn:
        return int(conn.execute("SELECT coalesce(sum(sessions), 0) FROM pg_stat_database").fetchone()[0])


def _server_log_errors(since_offset: int) -> tuple[int, int]:
    """Slot errors the embedded server logged after `since_offset`; returns (errors, new offset)."""
    log = settings.state_dir() / "postgres.log"
    if not connect.uses_embedded() or not log.exists():
        return 0, since_offset
    with open(log, "rb") as f:
        f.seek(since_offset)
        text = f.read().decode("utf-8", "replace")
        offset = f.tell()
    return sum(text.count(marker) for marker in _SLOT_ERRORS), offset


def _log_offset() -> int:
    log = settings.state_dir() / "postgres.log"
    return log.stat().st_size if connect.uses_embedded() and log.exists() else 0


# -- (a) the naive design ------------------------------------------------------------------
def _naive_worker(url: str, jobs: list[int], results: Any) -> None:
    """One process of the old system: a big pool that never lets go, jobs holding it across HTTP."""
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from psycopg_pool import ConnectionPool

    logging.disable(logging.CRITICAL)  # psycopg_pool logs every failed connect; we count them
    pool = ConnectionPool(url, min_size=NAIVE_POOL_MIN, max_size=NAIVE_POOL_MAX, timeout=3600, max_idle=86400,
                          reconnect_timeout=3600, open=True)
    done = errors = 0
    lock = threading.Lock()

    def job(batch: int) -> None:
        nonlocal done, errors
        try:
            with pool.connection() as conn:
                conn.execute("SELECT count(*) FROM companies WHERE batch = %s", [batch]).fetchone()
                time.sleep(NAIVE_HOLD_S)  # the HTTP calls, with the connection still held
                conn.execute("SELECT 1")
            with lock:
                done += 1
        except Exception:
            with lock:
                errors += 1

    with ThreadPoolExecutor(NAIVE_THREADS) as executor:
        list(executor.map(job, jobs))
    stats = pool.get_stats()
    results.put({"done": done, "errors": errors + stats.get("connections_errors", 0)})
    pool.close()


def run_naive(url: DatabaseUrl, batches: int, observer: PostgresResource) -> dict[str, Any]:
    jobs = [b for b in range(batches) for _ in SOURCES]
    shares = [jobs[i::NAIVE_PROCESSES] for i in range(NAIVE_PROCESSES)]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    offset, sessions_before, started = _log_offset(), _sessions(observer), time.monotonic()
    with ActivitySampler(observer, exclude_prefixes=("enrichment:storm",),
                         databases=(STORM_DATABASE, STORM_DATABASE + "_dagster")) as sampler:
        procs = [ctx.Process(target=_naive_worker, args=(url.render(show_password=True), share, results)) for share in shares]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=900) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
    minutes = (time.monotonic() - started) / 60
    server_errors, _ = _server_log_errors(offset)
    return {
        "naive_errors": max(server_errors, sum(o["errors"] for o in outcomes)),
        "naive_client_errors": sum(o["errors"] for o in outcomes),
        "naive_server_logged_errors": server_errors,
        "naive_peak": sampler.peak_total,
        "naive_completed_jobs": sum(o["done"] for o in outcomes),
        "naive_jobs": len(jobs),
        "naive_new_connections_per_min": round((_sessions(observer) - sessions_before) / minutes, 1),
        "naive_wall_s": round(minutes * 60, 1),
    }


# -- (b) this project ------------------------------------------------------------------------
def run_managed(url: DatabaseUrl, batches: int, latency_ms: float, observer: PostgresResource, data: Path) -> dict[str, Any]:
    import dagster as dg

    from enrichment_pipeline.defs.companies.partitions import ensure_batch_partitions
    from enrichment_pipeline.instance import dagster_environment
    from enrichment_pipeline.registers.faults import Faults
    from enrichment_pipeline.registers.service import RegistersService

    import os

    os.environ["DATABASE_URL"] = url.render(show_password=True)
    os.environ.pop("ENRICHMENT_DAGSTER_PG_URL", None)
    with RegistersService(data, faults=Faults(latency_ms=latency_ms)) as service:
        env = {**dagster_environment(), **local_registers_env(service.base_url), "DATABASE_URL": url.render(show_password=True),
               "ENRICHMENT_PG_IDLE_TIMEOUT_S": "5"}
        os.environ.update(env)
        instance = dg.DagsterInstance.get()
        ensure_batch_partitions(instance, batches)
        ensure_pool_limits(instance)
        with PostgresResource(database_url=url.render(show_password=True), pool_max=1).opened("storm-budget") as pg:
            budget = project_budget(pg, webserver_overflow=WEBSERVER_OVERFLOW)
        log_path = Path(tempfile.mkdtemp()) / "dagster.log"
        with LocalDagster(env, webserver_overflow=WEBSERVER_OVERFLOW, log_path=log_path) as dagster:
            offset, sessions_before, started = _log_offset(), _sessions(observer), time.monotonic()
            with ActivitySampler(observer, exclude_prefixes=("enrichment:storm",),
                         databases=(STORM_DATABASE, STORM_DATABASE + "_dagster")) as sampler:
                backfill = dagster.launch_backfill([*SOURCES, "company_profile"], title="connection storm")
                status = dagster.wait_backfill(backfill, timeout_s=1800, on_tick=lambda s: None)
            minutes = (time.monotonic() - started) / 60
            runs = dagster.runs()
    server_errors, _ = _server_log_errors(offset)
    with PostgresResource(database_url=url.render(show_password=True), pool_max=1).opened("storm-check") as pg, \
            pg.connection() as conn:
        complete = conn.execute(
            "SELECT count(*) FROM (SELECT c.batch FROM companies c JOIN company_profiles p USING (orgnr) "
            "GROUP BY c.batch HAVING min(p.sources_pending) = 0) done").fetchone()[0]
    failed_runs = sum(1 for r in runs if r["status"] == "FAILURE")
    return {
        "managed_errors": server_errors + failed_runs,
        "managed_server_logged_errors": server_errors,
        "managed_failed_runs": failed_runs,
        "managed_runs": len(runs),
        "managed_peak": sampler.peak_total,
        "managed_peak_ours": sampler.peak_ours,
        "managed_completed_batches": int(complete),
        "managed_backfill_status": status,
        "managed_new_connections_per_min": round((_sessions(observer) - sessions_before) / minutes, 1),
        "managed_wall_s": round(minutes * 60, 1),
        "budget_worst_case": budget.worst_case,
        "budget_available": budget.available,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--companies-per-batch", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    args = parser.parse_args()
    from enrichment_pipeline.importer.run import import_file
    from enrichment_pipeline.store import changes
    from enrichment_pipeline.registers.generator import generate

    server = connect.server_url()
    url = _fresh_database(server)
    data = settings.state_dir() / "bench" / f"storm-{args.batches * args.companies_per_batch}"
    if not (data / "manifest.json").exists():
        generate(data, companies=args.batches * args.companies_per_batch, seed=7)
    with PostgresResource(database_url=url.render(show_password=True)).opened("storm-import") as pg:
        import_file(pg, data / "enheter.json.gz", source_label="storm", batches=args.batches)
        changes.acknowledge(pg, changes.pending_batches(pg))  # only the backfill starts runs here
        with pg.connection() as conn:
            max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
    with PostgresResource(database_url=url.render(show_password=True), pool_max=1, leak_threshold_s=86400,
                          acquire_timeout_s=600).opened("storm-observer") as observer:
        _say(f"(a) naive: {NAIVE_PROCESSES} processes x pool max {NAIVE_POOL_MAX} against max_connections {max_connections}")
        naive = run_naive(url, args.batches, observer)
        _say(f"    {naive}")
        time.sleep(3)
        _say("(b) managed: dagster dev, backfill of every lookup over every batch")
        managed = run_managed(url, args.batches, args.latency_ms, observer, data)
        _say(f"    {managed}")
    line = {
        "benchmark": "connection_storm",
        "max_connections": max_connections,
        "batches": args.batches,
        **naive,
        **managed,
        "targets": "managed_errors == 0, managed_peak <= budget_worst_case, managed_completed_batches == batches, naive fails visibly",
        "meets_targets": managed["managed_errors"] == 0 and managed["managed_peak"] <= managed["budget_worst_case"]
        and managed["managed_completed_batches"] == args.batches and naive["naive_errors"] > 0,
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The worst-case number of server connections, derived term by term from the actual configuration.

The systems this project replaces died of arithmetic nobody did (7 processes x 100 connections
against 100 slots). Every process that can hold a connection is a term here:

- run workers: at most `max_concurrent_runs` at once (the daemon's run queue); each holds the
  Postgres resource's pool (at most `pool_max`, one pool per step process: the enrichment job runs
  in-process, so one process per run) and Dagster's storage connections (NullPool: one per thread
  inside a storage call: the step thread and the pool watcher's log line);
- the daemon: one storage connection per daemon thread, plus the automation evaluator's burst
  (it gathers every asset of one topological level at once);
- the webserver: Dagster's storage keeps a QueuePool of 1 + `--db-pool-max-overflow` per storage
  (runs, events, schedules);
- the code server: sensors and schedules evaluate there, with one Postgres resource pool;
- headroom for the CLI (`status`, `connections`, `db upgrade`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from enrichment_pipeline import settings

DAEMON_THREADS = 6  # 1.13 runs six daemons: asset, backfill, freshness, run queue, scheduler, sensor
STORAGES = 3  # runs, events, schedules
STORAGE_THREADS_PER_RUN_WORKER = 2
CLI_HEADROOM = 3
DEFAULT_MAX_CONCURRENT_RUNS = 10  # Dagster's own default when dagster.yaml says nothing
DEFAULT_WEBSERVER_OVERFLOW = 20  # dagster-webserver's default --db-pool-max-overflow


@dataclass(frozen=True)
class Term:
    name: str
    count: int
    formula: str


@dataclass
class Budget:
    terms: list[Term]
    server_max_connections: int | None = None
    superuser_reserved: int = 0
    reserved: int = 0
    source: str = "live"
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def worst_case(self) -> int:
        return sum(t.count for t in self.terms)

    @property
    def available(self) -> int | None:
        if self.server_max_connections is None:
            return None
        return self.server_max_connections - self.superuser_reserved - self.reserved

    @property
    def fits(self) -> bool:
        return self.available is not None and self.worst_case <= self.available

    def as_dict(self) -> dict[str, Any]:
        return {
            "worst_case": self.worst_case,
            "available": self.available,
            "fits": self.fits,
            "server": {"max_connections": self.server_max_connections, "superuser_reserved_connections": self.superuser_reserved,
                       "reserved_connections": self.reserved, "source": self.source},
            "terms": [asdict(t) for t in self.terms],
            "inputs": self.inputs,
        }

    def derivation(self) -> str:
        width = max(len(t.name) for t in self.terms)
        lines = [f"  {t.name.ljust(width)}  {t.count:>5}   {t.formula}" for t in self.terms]
        lines.append(f"  {'worst case'.ljust(width)}  {self.worst_case:>5}")
        if self.available is not None:
            lines.append(
                f"  {'server allows'.ljust(width)}  {self.available:>5}   max_connections {self.server_max_connections}"
                f" - superuser_reserved_connections {self.superuser_reserved} - reserved_connections {self.reserved}"
                f" ({self.source})"
            )
        return "\n".join(lines)

    def advice(self) -> str:
        over = self.worst_case - (self.available or 0)
        return (f"the worst case ({self.worst_case}) exceeds what the server allows ({self.available}) by {over}: lower "
                "concurrency.runs.max_concurrent_runs in dagster.yaml, the pool limits or ENRICHMENT_PG_POOL_MAX, "
                "lower the webserver's --db-pool-max-overflow, or raise max_connections on the server")


def instance_config(path: Path | None = None) -> dict[str, Any]:
    path = path or settings.project_root() / "dagster.yaml"
    return yaml.safe_load(path.read_text()) or {}


def max_concurrent_runs(config: dict[str, Any]) -> int:
    runs = (config.get("concurrency") or {}).get("runs") or {}
    value = runs.get("max_concurrent_runs", (config.get("run_queue") or {}).get("max_concurrent_runs"))
    return DEFAULT_MAX_CONCURRENT_RUNS if value is None else int(value)


def automation_burst() -> int:
    """The largest topological level of the asset graph: what the evaluator gathers at once."""
    from enrichment_pipeline.definitions import defs

    graph = defs.get_repository_def().asset_graph
    return max(len(level) for level in graph.toposorted_asset_keys_by_level)


def steps_per_run() -> int:
    """Step processes one run can have at once, from the executors the code location uses."""
    import os

    from enrichment_pipeline.definitions import defs

    repo = defs.get_repository_def()
    widest = 1
    for job in repo.get_all_jobs():
        executor = job.executor_def
        if executor.name == "in_process":
            continue
        widest = max(widest, int(os.environ.get("DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT") or os.cpu_count() or 1))
    return widest


def derive(*, runs: int, pool_max: int, steps_per_run: int, webserver_overflow: int, webservers: int = 1,
           burst: int, code_server_pools: int = 1, pool_limits: dict[str, int] | None = None) -> Budget:
    """The worst case from the numbers; `budget_for_project` reads them from the configuration."""
    terms = [
        Term("our pools in run workers", runs * steps_per_run * pool_max,
             f"max_concurrent_runs {runs} x step processes per run {steps_per_run} x pool_max {pool_max}"),
        Term("dagster storage in run workers", runs * steps_per_run * STORAGE_THREADS_PER_RUN_WORKER,
             f"max_concurrent_runs {runs} x step processes {steps_per_run} x {STORAGE_THREADS_PER_RUN_WORKER} threads (NullPool)"),
        Term("dagster daemon", DAEMON_THREADS + burst,
             f"{DAEMON_THREADS} daemon threads + automation burst {burst} (largest asset level)"),
        Term("dagster webserver", webservers * STORAGES * (1 + webserver_overflow),
             f"{webservers} webserver x {STORAGES} storages x (1 + --db-pool-max-overflow {webserver_overflow})"),
        Term("code server (sensors, schedules)", code_server_pools * (pool_max + 1),
             f"{code_server_pools} x (pool_max {pool_max} + 1 storage)"),
        Term("CLI headroom", CLI_HEADROOM, "status, connections, db upgrade"),
    ]
    return Budget(terms=terms, inputs={"max_concurrent_runs": runs, "pool_max": pool_max, "steps_per_run": steps_per_run,
                                       "webserver_db_pool_max_overflow": webserver_overflow, "pool_limits": pool_limits or {}})


def budget_for_project(*, webserver_overflow: int | None = None, config_path: Path | None = None) -> Budget:
    """The worst case of this project as configured (dagster.yaml, pools, executor, pool_max)."""
    from enrichment_pipeline.budget.pools import POOL_LIMITS
    from enrichment_pipeline.cli.dev import WEBSERVER_DB_POOL_MAX_OVERFLOW
    from enrichment_pipeline.db.resource import PostgresResource

    config = instance_config(config_path)
    return derive(
        runs=max_concurrent_runs(config),
        pool_max=PostgresResource().settings().pool_max,
        steps_per_run=steps_per_run(),
        webserver_overflow=WEBSERVER_DB_POOL_MAX_OVERFLOW if webserver_overflow is None else webserver_overflow,
        burst=automation_burst(),
        pool_limits=dict(POOL_LIMITS),
    )

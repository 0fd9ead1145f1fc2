"""`enrichment-pipeline demo`: the main job, end to end, on the embedded default.

Generates N units, serves them from the local registers service, imports the dump and
materializes every lookup over every company batch through Dagster, with progress; then prints
companies per source and outcome, elapsed time, throughput and the peak number of connections.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from psycopg import sql

from enrichment_pipeline import settings
from enrichment_pipeline.cli.common import print_json, project_postgres
from enrichment_pipeline.db import connect
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.errors import ConfigurationError
from enrichment_pipeline.store.status import status_report

BATCH_SIZE = 1000
BATCHES_PER_RUN = 5
PROJECT_TABLES = ("rejected_units", "imports", "companies", "enrichments", "company_profiles", "sync_cursors", "pipeline_settings",
                  "batch_changes")


class ConnectionSampler:
    """Peak number of server connections, sampled from pg_stat_activity on one pooled connection."""

    def __init__(self, postgres: PostgresResource, interval_s: float = 0.25) -> None:
        self.postgres, self.interval_s = postgres, interval_s
        self.peak_total = self.peak_project = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connection-sampler", daemon=True)

    def __enter__(self) -> "ConnectionSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with self.postgres.connection("demo-sampler") as conn:
            while not self._stop.is_set():
                total, project = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE application_name LIKE 'enrichment:%%') "
                    "FROM pg_stat_activity WHERE backend_type = 'client backend'"
                ).fetchone()
                self.peak_total, self.peak_project = max(self.peak_total, total), max(self.peak_project, project)
                self._stop.wait(self.interval_s)


def _say(args: argparse.Namespace, message: str) -> None:
    print(message, file=sys.stderr if args.json else sys.stdout, flush=True)


def _reset(postgres: PostgresResource) -> None:
    """The demo starts from an empty project database (only ever the embedded sandbox by default)."""
    with postgres.transaction("demo-reset") as conn:
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, PROJECT_TABLES))))


def _generate(args: argparse.Namespace, out: Path, changes: int) -> None:
    import json

    from enrichment_pipeline.registers.generator import generate

    manifest = out / "manifest.json"
    if manifest.exists():
        seen = json.loads(manifest.read_text())
        if (seen.get("companies"), seen.get("seed"), seen.get("changes")) == (args.companies, args.seed, changes):
            _say(args, f"reusing generated data in {out}")
            return
    started = time.monotonic()
    generate(out, companies=args.companies, seed=args.seed, changes=changes)
    _say(args, f"generated {args.companies:,} units (+{changes} changes) in {time.monotonic() - started:.1f} s")


def _registers_config(base_url: str) -> dict[str, Any]:
    host_port = base_url.split("://", 1)[1]
    return {"config": {
        "brreg_api_url": base_url, "geonorge_api_url": base_url, "rate_limit_per_s": 0.0, "max_in_flight": 16,
        "homepage_resolve": host_port, "homepage_allow_private_addresses": True, "timeout_s": 5.0, "backoff_base_s": 0.1,
    }}


def _runs(batches: list[int]) -> list[tuple[int, int]]:
    """Consecutive batches, at most BATCHES_PER_RUN to a run, as (first, last) ranges."""
    ranges: list[tuple[int, int]] = []
    for batch in sorted(batches):
        if ranges and batch == ranges[-1][1] + 1 and batch - ranges[-1][0] < BATCHES_PER_RUN:
            ranges[-1] = (ranges[-1][0], batch)
        else:
            ranges.append((batch, batch))
    return ranges


def _enrich(args: argparse.Namespace, batches: list[int], registers: dict[str, Any]) -> int:
    """Every lookup and the profile over `batches`; returns how many company lookups were made."""
    from enrichment_pipeline.defs.lookups.jobs import ENRICH
    from enrichment_pipeline.importer.validate import partition_key
    from enrichment_pipeline.runner import materialization_metadata, run_job
    from enrichment_pipeline.sources import SOURCES

    looked_up, done = 0, 0
    for first, last in _runs(batches):
        started = time.monotonic()
        result = run_job(ENRICH, run_config={"resources": {"registers": registers}},
                         tags={"dagster/asset_partition_range_start": partition_key(first),
                               "dagster/asset_partition_range_end": partition_key(last)})
        looked_up += sum(int(materialization_metadata(result, s).get("stale", 0)) for s in SOURCES)
        done += last - first + 1
        _say(args, f"  run {result.run_id[:8]}: batches {partition_key(first)}..{partition_key(last)} enriched in "
                   f"{time.monotonic() - started:.1f} s ({done}/{len(batches)})")
    return looked_up


def _apply_change_feed(args: argparse.Namespace, postgres: PostgresResource, base_url: str) -> tuple[Any, list[int]]:
    """What the change-feed sensor does each minute, once: apply the feed and report the changed batches."""
    from enrichment_pipeline.defs.companies.assets import report_changed_batches
    from enrichment_pipeline.importer.feed import sync_updates
    from enrichment_pipeline.instance import project_instance
    from enrichment_pipeline.registers.clients import BrregClient
    from enrichment_pipeline.store import changes

    report = sync_updates(postgres, BrregClient(base_url), holder="demo-feed")
    changed = sorted(changes.pending_batches(postgres, "demo-feed"))
    report_changed_batches(postgres, project_instance().report_runless_asset_event, "demo-feed")
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.kinds.items()))
    _say(args, f"change feed: {report.updates} updates ({kinds}) from {report.start}; {len(changed)} batches changed")
    return report, changed


def run(args: argparse.Namespace) -> int:
    from enrichment_pipeline.budget.check import require_fits
    from enrichment_pipeline.budget.pools import ensure_pool_limits
    from enrichment_pipeline.defs.companies.jobs import IMPORT_COMPANIES
    from enrichment_pipeline.instance import project_instance
    from enrichment_pipeline.registers.service import RegistersService
    from enrichment_pipeline.runner import materialization_metadata, run_job

    if args.companies < 1:
        raise ConfigurationError("--companies must be at least 1")
    if not connect.uses_embedded() and not args.reset:
        raise ConfigurationError("the demo empties the project database; with DATABASE_URL set, pass --reset to allow that")
    changes = args.changes if args.changes is not None else max(1, args.companies // 100)
    batches = max(1, args.companies // BATCH_SIZE)
    started = time.monotonic()
    data_dir = settings.state_dir() / "demo-data"
    with project_postgres("demo") as postgres:  # before any work: a configuration that does not fit is refused
        budget = require_fits(postgres)
    _say(args, f"connection budget: worst case {budget.worst_case} of {budget.available} the server allows")
    _generate(args, data_dir, changes)
    with project_postgres("demo") as postgres, \
            PostgresResource(pool_max=1, leak_threshold_s=86400).opened("demo-sampler") as observer, ConnectionSampler(observer) as sampler:
        ensure_pool_limits(project_instance())
        _reset(postgres)
        with RegistersService(data_dir, port=0, faults=_latency_faults(args.latency_ms, args.seed)) as service:
            _say(args, f"local registers service on {service.base_url} (latency {args.latency_ms:g} ms)")
            # From the dump's URL, as the nightly import reads the real one (ETag, Last-Modified).
            imported = run_job(IMPORT_COMPANIES, run_config={"ops": {"companies": {"config": {
                "source": f"{service.base_url}/enhetsregisteret/api/enheter/lastned", "batches": batches}}}})
            meta = materialization_metadata(imported, "companies")
            _say(args, f"imported {meta.get('rows_read', 0):,} units into {batches} batches in {meta.get('wall_s')} s")
            registers = _registers_config(service.base_url)
            enrich_started = time.monotonic()
            _enrich(args, list(range(batches)), registers)
            enrich_s = time.monotonic() - enrich_started
            feed_started = time.monotonic()
            feed, changed = _apply_change_feed(args, postgres, service.base_url)
            looked_up_again = _enrich(args, changed, registers)
            feed_s = time.monotonic() - feed_started
        report = status_report(postgres, "demo")
    summary = {
        **report,
        "elapsed_s": round(time.monotonic() - started, 1),
        "enrich_s": round(enrich_s, 1),
        "companies_per_s": round(report["companies"] / enrich_s, 1) if enrich_s else 0.0,
        "peak_connections": sampler.peak_total,
        "budget_worst_case": budget.worst_case,
        "peak_project_connections": sampler.peak_project,
        "change_feed": {"updates": feed.updates, "kinds": dict(feed.kinds), "changed_batches": len(changed),
                        "lookups_made_again": looked_up_again, "elapsed_s": round(feed_s, 1)},
    }
    _print_summary(args, summary)
    return 0


def _latency_faults(latency_ms: float, seed: int) -> Any:
    from enrichment_pipeline.registers.faults import Faults

    return Faults(latency_ms=latency_ms, seed=seed)


def _print_summary(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.json:
        print_json(summary)
        return
    from enrichment_pipeline import ATTRIBUTION

    print(f"\n{summary['companies']:,} companies ({summary['deleted']:,} deleted, {summary['rejected']:,} rejected) "
          f"in {summary['batches']} batches")
    outcomes = list(next(iter(summary["sources"].values())))
    print("source".ljust(18) + "".join(o.rjust(10) for o in outcomes))
    for source, counts in summary["sources"].items():
        print(source.ljust(18) + "".join(f"{counts[o]:>10,}" for o in outcomes))
    print(f"elapsed {summary['elapsed_s']} s (enrichment {summary['enrich_s']} s, {summary['companies_per_s']} companies/s); "
          f"peak database connections {summary['peak_connections']} ({summary['peak_project_connections']} of them ours)")
    feed = summary["change_feed"]
    print(f"change feed: {feed['updates']} updates changed {feed['changed_batches']} batches; only their affected "
          f"companies were looked up again ({feed['lookups_made_again']:,} lookups) in {feed['elapsed_s']} s")
    print(ATTRIBUTION)

"""`enrichment-pipeline import` and `show`: the register, in and out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from enrichment_pipeline import ATTRIBUTION
from enrichment_pipeline.cli.common import print_json, project_postgres
from enrichment_pipeline.errors import ConfigurationError
from enrichment_pipeline.importer.source import is_url
from enrichment_pipeline.registers import orgnr as orgnr_rules
from enrichment_pipeline.store import companies as store


def import_dump(args: argparse.Namespace) -> int:
    from enrichment_pipeline.defs.companies.jobs import IMPORT_COMPANIES
    from enrichment_pipeline.runner import materialization_metadata, run_job

    source = args.source if is_url(args.source) else str(Path(args.source).resolve())
    if not is_url(source) and not Path(source).is_file():
        raise ConfigurationError(f"no such dump file: {args.source}")
    with project_postgres("import"):
        pass  # schema at head before the run starts
    config: dict[str, Any] = {"source": source}
    if args.batches:
        config["batches"] = args.batches
    result = run_job(IMPORT_COMPANIES, run_config={"ops": {"companies": {"config": config}}})
    metadata = materialization_metadata(result, "companies")
    if args.json:
        print_json({"run_id": result.run_id, **metadata})
    else:
        print(f"run {result.run_id[:8]}: {metadata.get('rows_read', 0):,} units read, {metadata.get('inserted', 0):,} new, "
              f"{metadata.get('updated', 0):,} changed, {metadata.get('marked_deleted', 0):,} marked deleted, "
              f"{metadata.get('rejected', 0):,} rejected in {metadata.get('wall_s', 0)} s")
    return 0


def sync_updates(args: argparse.Namespace) -> int:
    """The change-feed sensor's work, once: apply the feed from the shared cursor, then tell Dagster
    which batches changed, so automation re-enriches exactly those (and the UI shows it)."""
    import sys

    from enrichment_pipeline.defs.companies.assets import report_changed_batches
    from enrichment_pipeline.importer.feed import SyncReport
    from enrichment_pipeline.importer.feed import sync_updates as apply_feed
    from enrichment_pipeline.instance import project_instance
    from enrichment_pipeline.lookups.registers_resource import RegistersResource

    def progress(report: SyncReport) -> None:
        print(f"  page {report.pages}: {report.updates:,} updates applied, feed at {report.position}",
              file=sys.stderr if args.json else sys.stdout, flush=True)

    registers = RegistersResource()
    with project_postgres("sync-updates") as postgres:
        report = apply_feed(postgres, registers.brreg(), from_id=args.from_id, time_budget_s=args.max_seconds,
                            max_in_flight=registers.in_flight(), holder="sync-updates", progress=progress)
        reported = report_changed_batches(postgres, project_instance().report_runless_asset_event, "sync-updates")
    if args.json:
        print_json({**report.as_dict(), "reported_batches": reported})
    elif report.skipped:
        print(report.skipped)
    else:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.kinds.items()))
        print(f"{report.updates:,} updates from {report.start} ({kinds or 'none'}): {report.upserted:,} units written, "
              f"{report.marked_deleted:,} marked deleted, {report.removed:,} removed; feed at {report.position}; "
              f"{reported} changed batches reported{' (more to come)' if report.more else ''}")
    return 0


def _register_view(record: dict[str, Any]) -> dict[str, Any]:
    """The register's own field names, without the dump's hypermedia links."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("links", "_links")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(record)


def show(args: argparse.Namespace) -> int:
    reason = orgnr_rules.invalid_reason(args.orgnr)
    if reason is not None:
        raise ConfigurationError(f"{args.orgnr!r} is not a valid organisation number ({reason})")
    with project_postgres("show") as postgres:
        found = store.company(postgres, args.orgnr)
    if found is None:
        raise ConfigurationError(f"no company {args.orgnr} in the database (run an import first?)")
    view = {
        **_register_view(found["record"]),
        "_batch": found["batch"],
        "_deleted_at": found["deleted_at"],
        "_enrichments": found["enrichments"],
    }
    if args.json:
        print_json(view)
        return 0
    record = view
    print(f"{record['organisasjonsnummer']}  {record['navn']}")
    for key, value in record.items():
        if key in ("organisasjonsnummer", "navn") or key.startswith("_"):
            continue
        print(f"  {key}: {json.dumps(value, ensure_ascii=False)}")
    if found["deleted_at"]:
        print(f"  (deleted from the register, noticed {found['deleted_at']:%Y-%m-%d %H:%M})")
    for source, enrichment in found["enrichments"].items():
        when = enrichment["fetched_at"]
        print(f"[{source}] {enrichment['status']} at {when:%Y-%m-%d %H:%M:%S}"
              + (f" (HTTP {enrichment['http_status']})" if enrichment["http_status"] else "")
              + (f": {enrichment['error']}" if enrichment["error"] else ""))
        if enrichment["data"]:
            print("  " + json.dumps(enrichment["data"], ensure_ascii=False)[:500])
    print(ATTRIBUTION)
    return 0

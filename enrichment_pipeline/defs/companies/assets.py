"""The register: `companies`, imported from the nightly bulk dump, and `company_changes`, which batches changed.

`company_changes` is not computed by Dagster: a partition is reported materialized whenever a
company of that batch is new, changed, deleted or removed, by the import here or by the change
feed (sensors.py). Every lookup depends on it, so declarative automation re-enriches exactly the
batches that changed.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from enrichment_pipeline import __version__
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.companies.partitions import COMPANY_BATCHES, ensure_batch_partitions
from enrichment_pipeline.defs.names import COMPANIES, COMPANY_CHANGES, GROUP_REGISTER, POOL_IMPORT
from enrichment_pipeline.importer import source as dump_source
from enrichment_pipeline.importer.run import ImportResult, import_file
from enrichment_pipeline.importer.validate import partition_key
from enrichment_pipeline.settings import state_dir
from enrichment_pipeline.store import changes
from enrichment_pipeline.store import companies as store

USER_AGENT = f"enrichment-pipeline/{__version__} (open-data enrichment of Enhetsregisteret)"


class ImportConfig(dg.Config):
    source: str = dump_source.REAL_DUMP_URL
    """A local path to enheter.json.gz / enheter.csv.gz (gzip or not), or the dump's URL."""
    batches: int | None = None
    """Company batches; fixed by the first import (default 1200 for the full register)."""
    max_delete_share: float = 0.5
    """Refuse a dump that would mark more than this share of live companies deleted."""


def _metadata(result: ImportResult, source: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "source": source,
        "format": result.format,
        "rows_read": result.rows_read,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "marked_deleted": result.marked_deleted,
        "kept_previous": result.kept_previous,
        "rejected": sum(result.rejected.values()),
        "batches": result.batches,
        "changed_batches": len(result.changed_batches),
        "rows_per_s": round(result.rows_read / result.wall_s, 1) if result.wall_s else 0.0,
        "wall_s": round(result.wall_s, 2),
    }
    metadata.update({f"rejected_{reason}": count for reason, count in sorted(result.rejected.items())})
    return metadata


company_changes = dg.AssetSpec(
    COMPANY_CHANGES,
    partitions_def=COMPANY_BATCHES,
    deps=[COMPANIES],
    group_name=GROUP_REGISTER,
    kinds={"postgres"},
    description="Which company batches changed: reported by the import and the change feed, never computed.",
)


def change_events(pending: dict[int, int]) -> list[dg.AssetMaterialization]:
    """One materialization of `company_changes` per changed batch (`pending`: batch -> outbox version)."""
    return [dg.AssetMaterialization(asset_key=COMPANY_CHANGES, partition=partition_key(batch), metadata={"outbox_version": version})
            for batch, version in sorted(pending.items())]


def report_changed_batches(postgres: PostgresResource, emit: Callable[[dg.AssetMaterialization], None], holder: object = None) -> int:
    """Tell Dagster of every batch waiting in the outbox, then take out what was told.

    For callers that emit synchronously (a run's event log, the instance); a crash between the two
    only means a batch is reported twice, which requests nothing more than once.
    """
    pending = changes.pending_batches(postgres, holder)
    for event in change_events(pending):
        emit(event)
    changes.acknowledge(postgres, pending, holder)
    return len(pending)


def _local_dump(context: dg.AssetExecutionContext, config: ImportConfig,
                postgres: PostgresResource) -> tuple[Path | None, dump_source.Download | None]:
    """The dump as a local file; a URL is downloaded first, conditionally on the last ETag."""
    if not dump_source.is_url(config.source):
        return Path(config.source), None
    last_etag = store.get_setting(postgres, "dump_etag", context)
    download = dump_source.download(config.source, state_dir() / "downloads", etag=last_etag, user_agent=USER_AGENT)
    if download.path is None:
        context.log.info(f"dump unchanged since ETag {last_etag}: nothing to import")
    return download.path, download


@dg.asset(
    key=COMPANIES,
    group_name=GROUP_REGISTER,
    kinds={"postgres", "python"},
    pool=POOL_IMPORT,
    description="Every unit of Enhetsregisteret: the register record (jsonb) plus typed columns.",
    check_specs=[dg.AssetCheckSpec("matches_dump", asset=COMPANIES,
                                   description="Live companies equal the valid units of the last dump imported.")],
)
def companies(context: dg.AssetExecutionContext, config: ImportConfig, postgres: PostgresResource) -> dg.MaterializeResult:
    path, download = _local_dump(context, config, postgres)
    if path is None:
        return dg.MaterializeResult(metadata={"source": config.source, "unchanged": True},
                                    check_results=[_matches_dump(postgres, context)])
    result = import_file(
        postgres, path, source_label=config.source, etag=download.etag if download else None,
        built_at=dump_source.java_date_to_iso(download.last_modified) if download else None,
        batches=config.batches, max_delete_share=config.max_delete_share, holder=context,
        progress=lambda n: context.log.info(f"{n:,} units read"),
    )
    new_keys = ensure_batch_partitions(context.instance, result.batches)
    reported = report_changed_batches(postgres, context.log_event, context)
    context.log.info(f"imported {result.rows_read:,} units in {result.wall_s:.1f} s; {new_keys} new batch partitions; "
                     f"{reported} changed batches reported")
    return dg.MaterializeResult(metadata=_metadata(result, config.source), check_results=[_matches_dump(postgres, context)])


def _matches_dump(postgres: PostgresResource, holder: object) -> dg.AssetCheckResult:
    live, expected = store.live_vs_last_import(postgres, holder)
    return dg.AssetCheckResult(
        check_name="matches_dump", passed=expected is not None and live == expected,
        metadata={"live_companies": live, "valid_units_in_dump": expected if expected is not None else -1},
    )

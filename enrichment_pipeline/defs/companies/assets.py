"""The `companies` asset: the whole register, imported from its nightly bulk dump."""

from pathlib import Path
from typing import Any

import dagster as dg

from enrichment_pipeline import __version__
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.companies.partitions import ensure_batch_partitions
from enrichment_pipeline.defs.names import GROUP_REGISTER, POOL_IMPORT
from enrichment_pipeline.importer import source as dump_source
from enrichment_pipeline.importer.run import ImportResult, import_file
from enrichment_pipeline.settings import state_dir
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
        "rejected": sum(result.rejected.values()),
        "batches": result.batches,
        "changed_batches": len(result.changed_batches),
        "rows_per_s": round(result.rows_read / result.wall_s, 1) if result.wall_s else 0.0,
        "wall_s": round(result.wall_s, 2),
    }
    metadata.update({f"rejected_{reason}": count for reason, count in sorted(result.rejected.items())})
    return metadata


def _local_dump(context: dg.AssetExecutionContext, config: ImportConfig, postgres: PostgresResource) -> tuple[Path | None, str | None]:
    """The dump as a local file; a URL is downloaded first, conditionally on the last ETag."""
    if not dump_source.is_url(config.source):
        return Path(config.source), None
    last_etag = store.get_setting(postgres, "dump_etag", context)
    download = dump_source.download(config.source, state_dir() / "downloads", etag=last_etag, user_agent=USER_AGENT)
    if download.path is None:
        context.log.info(f"dump unchanged since ETag {last_etag}: nothing to import")
    return download.path, download.etag


@dg.asset(
    key="companies",
    group_name=GROUP_REGISTER,
    kinds={"postgres", "python"},
    pool=POOL_IMPORT,
    description="Every unit of Enhetsregisteret: the register record (jsonb) plus typed columns.",
)
def companies(context: dg.AssetExecutionContext, config: ImportConfig, postgres: PostgresResource) -> dg.MaterializeResult:
    path, etag = _local_dump(context, config, postgres)
    if path is None:
        return dg.MaterializeResult(metadata={"source": config.source, "unchanged": True})
    result = import_file(
        postgres, path, source_label=config.source, etag=etag, batches=config.batches,
        max_delete_share=config.max_delete_share, holder=context,
        progress=lambda n: context.log.info(f"{n:,} units read"),
    )
    new_keys = ensure_batch_partitions(context.instance, result.batches)
    context.log.info(f"imported {result.rows_read:,} units in {result.wall_s:.1f} s; {new_keys} new batch partitions")
    return dg.MaterializeResult(metadata=_metadata(result, config.source))

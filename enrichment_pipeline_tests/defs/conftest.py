"""Fixtures for the Dagster definitions that keep the register current: a generated register with a
change feed, imported as of the dump's build time, and the local registers service serving it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.companies.partitions import COMPANY_BATCHES, batch_keys
from enrichment_pipeline.importer.run import import_file
from enrichment_pipeline.importer.source import java_date_to_iso
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.registers.service import RegistersService
from enrichment_pipeline.store import changes

BATCHES = 6


def jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def feed(generated: Path) -> list[dict[str, Any]]:
    return list(jsonl(generated / "updates.jsonl.gz"))


def registers_for(service: RegistersService, **overrides: Any) -> RegistersResource:
    host_port = service.base_url.split("://", 1)[1]
    settings: dict[str, Any] = {
        "brreg_api_url": service.base_url, "geonorge_api_url": service.base_url, "rate_limit_per_s": 0.0,
        "max_in_flight": 8, "homepage_resolve": host_port, "homepage_allow_private_addresses": True,
        "timeout_s": 2.0, "retries": 1, "backoff_base_s": 0.01,
    }
    settings.update(overrides)
    return RegistersResource(**settings)


def snapshot(postgres: PostgresResource) -> dict[str, tuple[Any, ...]]:
    """Every company as stored: what any write would change."""
    with postgres.connection() as conn:
        rows = conn.execute("SELECT orgnr, record_hash, updated_at, deleted_at, batch FROM companies").fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


@pytest.fixture()
def imported(postgres: PostgresResource, generated: Path) -> PostgresResource:
    """The generated dump imported as the real one would be from its URL: the build time is known,
    and the import's own changed batches were already reported."""
    manifest = json.loads((generated / "manifest.json").read_text())
    import_file(postgres, generated / "enheter.json.gz", source_label="dump", batches=BATCHES,
                built_at=java_date_to_iso(manifest["last_modified"]))
    changes.acknowledge(postgres, changes.pending_batches(postgres))
    return postgres


@pytest.fixture()
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions(COMPANY_BATCHES.name, batch_keys(BATCHES))
        yield inst

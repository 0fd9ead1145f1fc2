"""Fixtures for the Dagster definitions that keep the register current: a generated register with a
change feed, imported as of the dump's build time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.importer.run import import_file
from enrichment_pipeline.importer.source import java_date_to_iso
from enrichment_pipeline.store import changes
from enrichment_pipeline_tests.conftest import BATCHES, jsonl


def feed(generated: Path) -> list[dict[str, Any]]:
    return list(jsonl(generated / "updates.jsonl.gz"))


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

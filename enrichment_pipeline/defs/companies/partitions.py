"""Company batches: the partitions every lookup asset uses.

A company's batch is a stable hash of its organisation number modulo a batch count fixed at the
first import, so it never moves when others come or go. Keys are `b0000`, `b0001`, ...; they are
dynamic partitions added by the import, so the count is a deployment setting, not code.
"""

import dagster as dg

from enrichment_pipeline.importer.validate import partition_key

COMPANY_BATCHES = dg.DynamicPartitionsDefinition(name="company_batches")


def batch_keys(batches: int) -> list[str]:
    return [partition_key(b) for b in range(batches)]


def batch_number(key: str) -> int:
    if not (key.startswith("b") and key[1:].isdigit()):
        raise ValueError(f"not a company batch key: {key!r}")
    return int(key[1:])


def ensure_batch_partitions(instance: dg.DagsterInstance, batches: int) -> int:
    """Register the batch keys with the instance; returns how many were new."""
    existing = set(instance.get_dynamic_partitions(COMPANY_BATCHES.name))
    missing = [k for k in batch_keys(batches) if k not in existing]
    if missing:
        instance.add_dynamic_partitions(COMPANY_BATCHES.name, missing)
    return len(missing)

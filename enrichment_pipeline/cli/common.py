"""What several commands share: an opened, migrated project database and JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from enrichment_pipeline.db import migrate
from enrichment_pipeline.db.resource import PostgresResource


@contextmanager
def project_postgres(command: str, *, upgrade: bool = True) -> Iterator[PostgresResource]:
    """The project's database for a CLI command, schema at head, pool closed on exit."""
    with PostgresResource().opened(command) as postgres:
        if upgrade:
            migrate.upgrade(postgres)
        yield postgres


def print_json(payload: Any) -> None:
    json.dump(payload, sys.stdout, indent=None, sort_keys=False, default=str)
    sys.stdout.write("\n")

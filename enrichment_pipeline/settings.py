"""Where the project keeps its state, resolved when asked (never at import time)."""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "ENRICHMENT_STATE_DIR"
DATABASE_URL_ENV = "DATABASE_URL"
DAGSTER_DATABASE_URL_ENV = "DAGSTER_DATABASE_URL"

PROJECT_DATABASE = "enrichment"
DAGSTER_DATABASE = "enrichment_dagster"


def project_root() -> Path:
    """The checkout holding dagster.yaml: the package's parent for an editable install, else the cwd."""
    package_parent = Path(__file__).resolve().parent.parent
    if (package_parent / "dagster.yaml").exists():
        return package_parent
    return Path.cwd().resolve()


def state_dir() -> Path:
    """The project state folder (embedded server data, Dagster artefacts); created on first use."""
    configured = os.environ.get(STATE_DIR_ENV)
    path = Path(configured).resolve() if configured else project_root() / ".enrichment"
    path.mkdir(parents=True, exist_ok=True)
    return path

from __future__ import annotations

from pathlib import Path

import pytest

from enrichment_pipeline.registers.generator import generate


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 generated units with a change feed, shared by the import tests."""
    out = tmp_path_factory.mktemp("generated")
    generate(out, companies=3000, seed=11, changes=60)
    return out

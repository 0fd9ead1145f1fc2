"""Shared fixtures for tests that talk to the local registers service over real sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from enrichment_pipeline.registers.faults import Faults
from enrichment_pipeline.registers.service import RegistersService

StartService = Callable[..., RegistersService]


@pytest.fixture
def registers_service() -> Iterator[StartService]:
    """A factory: `registers_service(data_dir, faults=None, **kwargs)` starts a service on an
    ephemeral port; every service it started is stopped when the test ends."""
    started: list[RegistersService] = []

    def start(data_dir: Path, faults: Faults | None = None, **kwargs: Any) -> RegistersService:
        service = RegistersService(data_dir, faults=faults, **kwargs).start()
        started.append(service)
        return service

    yield start
    for service in reversed(started):
        service.stop()

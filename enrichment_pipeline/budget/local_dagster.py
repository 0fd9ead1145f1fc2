"""Real Dagster on this machine (webserver, daemon, code server via `dagster dev`), driven like a user.

Backfills are launched through the webserver's GraphQL API, exactly as the UI's "Materialize all
partitions" does, so they go through the backfill daemon, the run queue and the pools. Used by the
full-load test and the connection-storm benchmark.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from enrichment_pipeline import settings
from enrichment_pipeline.db.resource import PostgresResource

_LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""
_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}
"""
_RUNS = """
query { runsOrError { ... on Runs { results { runId status tags { key value } } } } }
"""
_LOCATION = """
query { workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
_SENSORS = """
query { sensorsOrError(repositorySelector: {repositoryLocationName: "enrichment_pipeline", repositoryName: "__repository__"}) {
  __typename ... on Sensors { results { name sensorState { id status } } } } }
"""
_STOP_SENSOR = """
mutation($id: String!) { stopSensor(id: $id) { __typename
  ... on StopSensorMutationResult { instigationState { status } } ... on PythonError { message } } }
"""
FINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalDagster:
    """`with LocalDagster(env) as dagster:` starts `dagster dev` with the project's dagster.yaml."""

    def __init__(self, env: dict[str, str], *, webserver_overflow: int, log_path: Path | None = None,
                 start_timeout_s: float = 120.0, sensors: bool = False) -> None:
        """`sensors=False` stops the project's sensors (change feed, automation, both on by default) as
        soon as the code location loads, so only the caller starts runs; empty the `batch_changes`
        outbox first, or a first tick in that moment may report it."""
        self.env = env
        self.sensors = sensors
        self.port = _free_port()
        self.webserver_overflow = webserver_overflow
        self.log_path = log_path or settings.state_dir() / "local-dagster.log"
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LocalDagster":
        root = settings.project_root()
        command = [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(root / "workspace.yaml"),
                   "-p", str(self.port), "--db-pool-max-overflow", str(self.webserver_overflow)]
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self._proc = subprocess.Popen(command, cwd=root, env={**os.environ, **self.env}, stdout=log, stderr=log,
                                      start_new_session=True)
        self._wait_ready()
        if not self.sensors:
            stopped = self.stop_sensors()
            if set(stopped.values()) != {"STOPPED"}:
                raise RuntimeError(f"could not stop the sensors: {stopped}")
        return self

    def stop_sensors(self) -> dict[str, str]:
        """Stop every sensor of the code location; returns each one's status afterwards."""
        sensors = self.graphql(_SENSORS)["sensorsOrError"]["results"]
        stopped = {s["name"]: self.graphql(_STOP_SENSOR, {"id": s["sensorState"]["id"]})["stopSensor"] for s in sensors}
        return {name: result.get("instigationState", {}).get("status", result.get("message", "?"))
                for name, result in stopped.items()}

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGTERM)
            self._proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._proc.wait(timeout=10)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited early; see {self.log_path}")
            try:
                entries = self.graphql(_LOCATION)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    errors = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                    if errors:
                        raise RuntimeError(f"code location failed to load: {errors[0]['locationOrLoadError']['message']}")
                    return
            except (requests.RequestException, KeyError, TypeError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"dagster dev did not come up within {self.start_timeout_s:.0f} s; see {self.log_path}")

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        response.raise_for_status()
        payload = response.json()
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL error: {payload['errors'][0].get('message')}")
        return dict(payload["data"])

    def launch_backfill(self, assets: list[str], *, title: str = "enrichment backfill") -> str:
        """All partitions of `assets`, like the UI's 'Materialize all partitions'."""
        params = {"assetSelection": [{"path": [a]} for a in assets], "allPartitions": True, "title": title}
        result = self.graphql(_LAUNCH, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill refused: {result.get('message', result['__typename'])}")
        return str(result["backfillId"])

    def backfill_status(self, backfill_id: str) -> str:
        result = self.graphql(_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        return str(result.get("status") or result.get("message"))

    def runs(self) -> list[dict[str, Any]]:
        return list(self.graphql(_RUNS)["runsOrError"]["results"])

    def wait_backfill(self, backfill_id: str, timeout_s: float, on_tick: Callable[[str], None] | None = None) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.backfill_status(backfill_id)
            if on_tick is not None:
                on_tick(status)
            if status in FINAL:
                return status
            time.sleep(2.0)
        raise TimeoutError(f"backfill {backfill_id} not finished within {timeout_s:.0f} s")


class ActivitySampler:
    """Samples pg_stat_activity every `interval_s` on one connection: peak of all clients and of ours."""

    def __init__(self, postgres: PostgresResource, interval_s: float = 0.1,
                 exclude_prefixes: tuple[str, ...] = ("enrichment:harness",), databases: tuple[str, ...] = ()) -> None:
        """Connections whose application_name starts with one of `exclude_prefixes` (the observer's own,
        a test's fixtures) are not counted; with `databases`, only connections to those are."""
        self.postgres, self.interval_s, self.exclude_prefixes = postgres, interval_s, exclude_prefixes
        self.databases = databases
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="activity-sampler", daemon=True)

    def __enter__(self) -> "ActivitySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_total(self) -> int:
        return max((s[1] for s in self.samples), default=0)

    @property
    def peak_ours(self) -> int:
        return max((s[2] for s in self.samples), default=0)

    def _run(self) -> None:
        with self.postgres.connection(f"{self.exclude_prefixes[0]}-sampler") as conn:
            while not self._stop.is_set():
                total, ours = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE application_name LIKE 'enrichment:%%') "
                    "FROM pg_stat_activity WHERE backend_type = 'client backend' AND NOT application_name LIKE ANY(%s) "
                    "AND (cardinality(%s::text[]) = 0 OR datname = ANY(%s::text[]))",
                    [[p + "%" for p in self.exclude_prefixes], list(self.databases), list(self.databases)],
                ).fetchone()
                self.samples.append((time.monotonic(), int(total), int(ours)))
                self._stop.wait(self.interval_s)


def local_registers_env(base_url: str) -> dict[str, str]:
    """Environment that points every run worker's registers resource at the local service."""
    return {
        "BRREG_API_URL": base_url,
        "GEONORGE_API_URL": base_url,
        "ENRICHMENT_HTTP_RATE_LIMIT_PER_S": "0",
        "ENRICHMENT_HTTP_MAX_IN_FLIGHT": "16",
        "ENRICHMENT_HTTP_HOMEPAGE_RESOLVE": base_url.split("://", 1)[1],
        "ENRICHMENT_HTTP_HOMEPAGE_ALLOW_PRIVATE_ADDRESSES": "true",
        "ENRICHMENT_HTTP_TIMEOUT_S": "5",
        "ENRICHMENT_HTTP_BACKOFF_BASE_S": "0.1",
    }

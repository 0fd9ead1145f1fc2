"""`enrichment-pipeline budget`: the worst case follows the configuration term by term, a server too
small for it is refused with the derivation and what to change, and `demo` refuses before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from enrichment_pipeline.db.urls import DatabaseUrl

TERMS = ["our pools in run workers", "dagster storage in run workers", "dagster daemon", "dagster webserver",
         "code server (sensors, schedules)", "CLI headroom"]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ENRICHMENT_PG_") and k != "DATABASE_URL"}
    full_env.update(env)
    return subprocess.run([str(Path(sys.executable).with_name("enrichment-pipeline")), *args],
                          capture_output=True, text=True, timeout=120, env=full_env)


def _budget(*args: str, **env: str) -> dict:
    done = _cli("budget", "--json", *args, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_worst_case_is_the_sum_of_its_terms_and_follows_pool_max() -> None:
    default = _budget("--max-connections", "100")
    terms = {t["name"]: t["count"] for t in default["terms"]}
    assert list(terms) == TERMS and default["worst_case"] == sum(terms.values())
    assert terms["our pools in run workers"] == 4 * 1 * 2  # max_concurrent_runs x processes per run x pool_max

    bigger = _budget("--max-connections", "100", ENRICHMENT_PG_POOL_MAX="5")
    grown = {t["name"]: t["count"] for t in bigger["terms"]}
    assert grown["our pools in run workers"] == 4 * 1 * 5
    assert grown["code server (sensors, schedules)"] == terms["code server (sensors, schedules)"] + 3
    assert bigger["worst_case"] == default["worst_case"] + 4 * 3 + 3


def test_a_server_too_small_is_refused_with_the_derivation_and_what_to_change() -> None:
    worst = _budget("--max-connections", "100")["worst_case"]

    fits = _cli("budget", "--check", "--max-connections", str(worst))
    refused = _cli("budget", "--check", "--max-connections", str(worst - 1))

    assert fits.returncode == 0 and fits.stdout.rstrip().endswith("fits")
    assert refused.returncode == 3
    assert all(term in refused.stdout for term in TERMS)
    assert f"the worst case ({worst}) exceeds what the server allows ({worst - 1}) by 1" in refused.stdout
    assert "max_concurrent_runs" in refused.stdout and "ENRICHMENT_PG_POOL_MAX" in refused.stdout
    assert _cli("budget", "--max-connections", str(worst - 1)).returncode == 0  # without --check it only reports


def test_the_live_server_limits_are_read_and_the_demo_refuses_a_configuration_that_does_not_fit(
    test_db_url: DatabaseUrl, tmp_path: Path,
) -> None:
    url = test_db_url.render(show_password=True)
    live = _budget(DATABASE_URL=url)
    assert live["server"]["source"] == "read live from the server"
    assert live["available"] == (live["server"]["max_connections"] - live["server"]["superuser_reserved_connections"]
                                 - live["server"]["reserved_connections"])

    # pool_max 40 makes the worst case far larger than the server's 100 connections
    demo = _cli("demo", "--companies", "50", "--reset", DATABASE_URL=url, ENRICHMENT_PG_POOL_MAX="40",
                ENRICHMENT_STATE_DIR=str(tmp_path))
    assert demo.returncode == 3, demo.stderr
    assert "exceeds what the server allows" in demo.stderr and "our pools in run workers" in demo.stderr
    assert not (tmp_path / "demo-data").exists()  # refused before any work: nothing generated

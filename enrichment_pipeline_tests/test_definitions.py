"""The code location loads, with every asset, job, resource and pool the design names."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from enrichment_pipeline.definitions import defs
from enrichment_pipeline.defs.names import POOL_IMPORT, POOL_LOOKUPS, POOL_PROFILE
from enrichment_pipeline.sources import SOURCES

ROOT = Path(__file__).resolve().parent.parent


def test_definitions_load_every_asset_and_job() -> None:
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert keys == {"companies", "company_profile", *SOURCES}
    assert {"import_companies", "enrich_companies"} <= set(repo.job_names)
    assert set(repo.get_top_level_resources()) >= {"postgres", "registers"}


def test_every_asset_that_touches_the_database_declares_a_pool() -> None:
    repo = defs.get_repository_def()
    pools = {}
    for key in repo.asset_graph.get_all_asset_keys():
        node = repo.asset_graph.get(key)
        pools[key.to_user_string()] = node.pools
    assert pools["companies"] == {POOL_IMPORT}
    assert all(pools[s] == {POOL_LOOKUPS} for s in SOURCES)
    assert pools["company_profile"] in ({POOL_LOOKUPS}, {POOL_PROFILE})


def test_lookups_backfill_many_batches_per_run() -> None:
    repo = defs.get_repository_def()
    for source in SOURCES:
        policy = repo.asset_graph.get(dg.AssetKey(source)).backfill_policy
        assert policy is not None and policy.max_partitions_per_run == 50


def test_dagster_cli_validates_the_code_location() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={"DAGSTER_HOME": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout

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
    assert keys == {"companies", "company_changes", "company_profile", *SOURCES}
    assert {"import_companies", "enrich_companies"} <= set(repo.job_names)
    assert set(repo.get_top_level_resources()) >= {"postgres", "registers"}


def test_lookups_depend_on_company_changes_and_carry_an_automation_condition() -> None:
    graph = defs.get_repository_def().asset_graph
    assert not graph.get(dg.AssetKey("company_changes")).is_executable
    for source in SOURCES:
        node = graph.get(dg.AssetKey(source))
        assert node.parent_keys == {dg.AssetKey("company_changes")}
        assert node.automation_condition is not None
    assert graph.get(dg.AssetKey("company_profile")).automation_condition is not None


def test_automation_and_the_change_feed_run_by_default_and_the_nightly_import_waits_for_an_operator() -> None:
    repo = defs.get_repository_def()
    sensors = {s.name: s for s in repo.sensor_defs}
    assert sensors["enrichment_automation"].default_status == dg.DefaultSensorStatus.RUNNING
    assert sensors["register_change_feed"].default_status == dg.DefaultSensorStatus.RUNNING
    schedule = repo.get_schedule_def("nightly_register_import")
    assert schedule.execution_timezone == "Europe/Oslo" and schedule.cron_schedule == "15 5 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_every_lookup_has_an_error_share_check_and_the_import_a_dump_count_check() -> None:
    checks = {(k.asset_key.to_user_string(), k.name) for k in defs.get_repository_def().asset_graph.asset_check_keys}
    assert checks == {("companies", "matches_dump"), ("company_profile", "every_source_covers_every_company"),
                      *((s, "error_share_per_batch") for s in SOURCES)}


def test_every_asset_that_touches_the_database_declares_a_pool() -> None:
    repo = defs.get_repository_def()
    pools = {}
    for key in repo.asset_graph.get_all_asset_keys():
        node = repo.asset_graph.get(key)
        if not node.is_executable:  # company_changes is reported, never run
            continue
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

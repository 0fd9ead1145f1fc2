"""Keeping every company current, end to end through the project's own Dagster definitions:
the nightly schedule imports a new dump and skips an unchanged one; declarative automation asks
for exactly the batches that changed; after a change feed, the affected companies and only they
are looked up again; the asset checks report on each step."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from enrichment_pipeline.budget.local_dagster import local_registers_env
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.definitions import defs
from enrichment_pipeline.defs.companies.assets import report_changed_batches
from enrichment_pipeline.defs.companies.schedules import nightly_register_import
from enrichment_pipeline.importer.feed import sync_updates
from enrichment_pipeline.defs.lookups.jobs import ENRICH
from enrichment_pipeline.importer.validate import batch_of, partition_key
from enrichment_pipeline.sources import SOURCES
from enrichment_pipeline_tests.conftest import BATCHES, StartService, local_registers, make_resource
from enrichment_pipeline_tests.defs.conftest import snapshot

CHAIN = [*SOURCES, "company_profile"]
FEED_PAGE = 4  # updates applied after the first enrichment: fewer than the batches, so some stay untouched


@pytest.fixture()
def project_env(monkeypatch: pytest.MonkeyPatch, test_db_url_text: str, generated: Path,
                registers_service: StartService, tmp_path: Path) -> str:
    """The definitions' own resources (from the environment) on the test database and the local service."""
    service = registers_service(generated)
    monkeypatch.setenv("DATABASE_URL", test_db_url_text)
    monkeypatch.setenv("ENRICHMENT_STATE_DIR", str(tmp_path))  # downloads land here
    for key, value in local_registers_env(service.base_url).items():
        monkeypatch.setenv(key, value)
    return service.base_url


def _import(instance: dg.DagsterInstance, source: str) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("import_companies")
    config = {"ops": {"companies": {"config": {"source": source, "batches": BATCHES}}}}
    result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
    assert result.success
    return result


def _requested(evaluation: Any) -> dict[str, set[str]]:
    keys = [dg.AssetKey(a) for a in CHAIN]
    return {k.to_user_string(): set(evaluation.get_requested_partitions(k)) for k in keys
            if evaluation.get_requested_partitions(k)}


def _run_requested(instance: dg.DagsterInstance, requested: dict[str, set[str]]) -> list[dg.ExecuteInProcessResult]:
    """Run what automation asked for, one run per batch, as its backfill would."""
    by_batch: dict[str, list[dg.AssetKey]] = defaultdict(list)
    for asset, partitions in requested.items():
        for partition in partitions:
            by_batch[partition].append(dg.AssetKey(asset))
    job = defs.resolve_job_def(ENRICH)
    results = []
    for partition, assets in sorted(by_batch.items()):
        result = job.execute_in_process(instance=instance, partition_key=partition, asset_selection=assets, raise_on_error=False)
        failures = [e.message for e in result.all_events if e.is_step_failure]
        assert result.success, (partition, failures)
        results.append(result)
    return results


def _enrichments(postgres: PostgresResource) -> dict[tuple[str, str], tuple[Any, ...]]:
    with postgres.connection() as conn:
        rows = conn.execute("SELECT orgnr, source, outcome, fetched_at, run_id FROM enrichments").fetchall()
    return {(orgnr, source): (outcome, fetched, run) for orgnr, source, outcome, fetched, run in rows}


def _evaluate(instance: dg.DagsterInstance, cursor: Any = None) -> Any:
    return dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)


def test_the_nightly_schedule_imports_a_new_dump_and_skips_it_once_imported(
    postgres: PostgresResource, generated: Path, project_env: str, instance: dg.DagsterInstance,
    registers_service: StartService, test_db_url_text: str,
) -> None:
    service = registers_service(generated)  # its own counters: the schedule may only ask for the dump's headers
    resources = {"postgres": make_resource(test_db_url_text, pool_max=2), "registers": local_registers(service)}
    etag = json.loads((generated / "manifest.json").read_text())["etag"]

    with dg.build_schedule_context(instance=instance, resources=resources) as context:
        first = nightly_register_import(context)
    assert isinstance(first, dg.RunRequest) and first.run_key == f"dump-{etag}"
    source = first.run_config["ops"]["companies"]["config"]["source"]
    assert source == f"{service.base_url}/enhetsregisteret/api/enheter/lastned"
    assert service.stats()["by_route_status"]["lastned"] == {"200": 1}  # one HEAD, no download

    imported = _import(instance, source)
    [check] = imported.get_asset_check_evaluations()
    assert check.check_name == "matches_dump" and check.passed

    with dg.build_schedule_context(instance=instance, resources=resources) as context:
        second = nightly_register_import(context)
    assert isinstance(second, dg.SkipReason) and etag in (second.skip_message or "")
    assert service.stats()["by_route_status"]["lastned"] == {"200": 3}  # a HEAD, the one download, a HEAD


def test_automation_requests_exactly_the_changed_batches_and_the_affected_companies_alone_are_looked_up_again(
    postgres: PostgresResource, generated: Path, project_env: str, instance: dg.DagsterInstance, test_db_url_text: str,
) -> None:
    registers = registers_for_env(project_env)
    evaluation = _evaluate(instance)  # the automation sensor is running before the first import
    assert evaluation.total_requested == 0
    _import(instance, f"{project_env}/enhetsregisteret/api/enheter/lastned")

    # The first import changed every batch: every lookup and the profile are asked for every batch,
    # in one request, so each batch's run holds the whole chain.
    evaluation = _evaluate(instance, evaluation.cursor)
    every = {partition_key(b) for b in range(BATCHES)}
    assert _requested(evaluation) == {s: every for s in CHAIN}
    _run_requested(instance, _requested(evaluation))
    evaluation = _evaluate(instance, evaluation.cursor)
    assert evaluation.total_requested == 0  # nothing is asked twice

    # The first page of the change feed (as `sync-updates` applies and reports it): a few units in a
    # few of the batches.
    companies_before, enrichments_before = snapshot(postgres), _enrichments(postgres)
    sync_updates(postgres, registers.brreg(), page_size=FEED_PAGE, time_budget_s=0.0)
    report_changed_batches(postgres, instance.report_runless_asset_event)
    companies_after = snapshot(postgres)
    affected = {o for o, row in companies_after.items() if companies_before.get(o) != row}
    changed_batches = {partition_key(batch_of(o, BATCHES)) for o in affected}
    assert affected and changed_batches < every

    evaluation = _evaluate(instance, evaluation.cursor)
    assert _requested(evaluation) == {s: changed_batches for s in CHAIN}
    results = _run_requested(instance, _requested(evaluation))

    after = _enrichments(postgres)
    in_changed = {o for o in companies_after if partition_key(batch_of(o, BATCHES)) in changed_batches}
    for source in SOURCES:
        touched = {o for (o, s) in set(after) | set(enrichments_before) if s == source
                   and after.get((o, s)) != enrichments_before.get((o, s))}
        # Looked up again: the affected companies, and only they, plus the companies of those batches
        # whose last lookup failed (an error is always retried on the next run).
        failed = {o for o in in_changed if enrichments_before.get((o, source), ("",))[0] == "error"}
        assert touched == affected | failed, source
    checks = [c for r in results for c in r.get_asset_check_evaluations()]
    assert sorted((c.asset_key.to_user_string(), c.check_name) for c in checks) == sorted(
        [(s, "error_share_per_batch") for s in SOURCES] * len(changed_batches)
        + [("company_profile", "every_source_covers_every_company")] * len(changed_batches))
    assert all(c.passed for c in checks)
    assert _evaluate(instance, evaluation.cursor).total_requested == 0


def registers_for_env(base_url: str) -> Any:
    """The registers resource a sensor tick gets in the code server, pointed at the local service."""
    from enrichment_pipeline.lookups.registers_resource import RegistersResource

    return RegistersResource(brreg_api_url=base_url, geonorge_api_url=base_url, rate_limit_per_s=0.0,
                             retries=1, backoff_base_s=0.01, timeout_s=5.0)

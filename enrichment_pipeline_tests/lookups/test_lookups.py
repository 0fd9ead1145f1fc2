"""Every lookup asset against the local registers service over a real socket and a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.lookups.address_location import address_location
from enrichment_pipeline.defs.lookups.annual_accounts import FILING_FORMS, annual_accounts
from enrichment_pipeline.defs.lookups.company_profile import company_profile
from enrichment_pipeline.defs.lookups.company_roles import company_roles
from enrichment_pipeline.defs.lookups.sub_units import sub_units
from enrichment_pipeline.defs.lookups.website_profile import website_profile
from enrichment_pipeline.importer.run import import_file
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.registers.faults import Faults
from enrichment_pipeline_tests.conftest import BATCHES, StartService, local_registers, make_resource, roles_answers

LOOKUPS = [company_roles, annual_accounts, sub_units, address_location, website_profile]


@pytest.fixture()
def imported(postgres: PostgresResource, generated: Path) -> PostgresResource:
    import_file(postgres, generated / "enheter.json.gz", source_label="lookups", batches=BATCHES)
    return postgres


def _materialize(assets: list[Any], instance: dg.DagsterInstance, url: str, registers: RegistersResource,
                 partition: str = "b0000", raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets, partition_key=partition, instance=instance, raise_on_error=raise_on_error,
        resources={"postgres": make_resource(url, pool_max=2), "registers": registers},
        selection=[a.key for a in assets],
    )


def _outcomes(postgres: PostgresResource, source: str) -> dict[str, tuple[str, int | None]]:
    with postgres.connection() as conn:
        rows = conn.execute("SELECT orgnr, outcome, http_status FROM enrichments WHERE source = %s", [source]).fetchall()
    return {orgnr: (outcome, status) for orgnr, outcome, status in rows}


def _batch_orgnrs(postgres: PostgresResource, batch: int = 0) -> dict[str, dict[str, Any]]:
    with postgres.connection() as conn:
        rows = conn.execute("SELECT orgnr, record FROM companies WHERE batch = %s", [batch]).fetchall()
    return dict(rows)


def test_roles_outcomes_follow_the_registers_status_codes_and_gone_purges(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated)
    batch = _batch_orgnrs(imported)
    expected = roles_answers(generated, batch)
    assert {"ok", "not_found"} <= {o for o, _ in expected.values()}

    result = _materialize([company_roles], instance, test_db_url_text, local_registers(service))

    assert _outcomes(imported, "company_roles") == expected
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    counts = Counter(o for o, _ in expected.values())
    assert metadata["companies"].value == len(batch)
    assert all(metadata[f"outcome_{o}"].value == counts[o] for o in counts)
    gone = [orgnr for orgnr, (o, _) in expected.items() if o == "gone"]
    if gone:
        with imported.connection() as conn:
            navn, record = conn.execute("SELECT navn, record FROM companies WHERE orgnr = %s", [gone[0]]).fetchone()
        assert navn == "(fjernet)" and record == {"organisasjonsnummer": gone[0]}


def test_every_lookup_and_the_profile_cover_every_company_of_the_batch(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated)
    batch = _batch_orgnrs(imported)
    _materialize([*LOOKUPS, company_profile], instance, test_db_url_text, local_registers(service))
    for asset in LOOKUPS:
        outcomes = _outcomes(imported, asset.key.to_user_string())
        assert set(outcomes) == set(batch), asset.key
        assert Counter(o for o, _ in outcomes.values())["error"] <= 0.05 * len(batch), asset.key
    accounts = _outcomes(imported, "annual_accounts")
    non_filers = {n for n, r in batch.items() if r["organisasjonsform"]["kode"] not in FILING_FORMS}
    assert {n for n, (o, _) in accounts.items() if o == "skipped"} == non_filers
    homepages = _outcomes(imported, "website_profile")
    assert {n for n, (o, _) in homepages.items() if o == "skipped" and not batch[n].get("hjemmeside")} == \
        {n for n, r in batch.items() if not r.get("hjemmeside")}
    with imported.connection() as conn:
        profiles = conn.execute("SELECT count(*), min(sources_pending), max(sources_pending) FROM company_profiles").fetchone()
        live = conn.execute("SELECT count(*) FROM companies WHERE batch = 0 AND deleted_at IS NULL").fetchone()[0]
    assert profiles == (live, 0, 0)


def test_rerunning_a_partition_changes_nothing(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated)
    query = "SELECT orgnr, source, outcome, http_status, error, data FROM enrichments ORDER BY orgnr, source"
    _materialize([company_roles, sub_units, annual_accounts], instance, test_db_url_text, local_registers(service))
    with imported.connection() as conn:
        first = conn.execute(query).fetchall()
    _materialize([company_roles, sub_units, annual_accounts], instance, test_db_url_text, local_registers(service))
    with imported.connection() as conn:
        second = conn.execute(query).fetchall()
    assert len(first) > 0 and first == second


def test_faults_end_as_retries_or_recorded_errors_never_a_crashed_batch(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str,
) -> None:
    faults = Faults(rate_429=0.05, retry_after_s=0, rate_500=0.05, burst=2, rate_malformed=0.05, rate_reset=0.05,
                    rate_timeout=0.02, timeout_sleep_s=3.0, seed=5)
    service = registers_service(generated, faults=faults)
    batch = _batch_orgnrs(imported)
    result = _materialize([company_roles], instance, test_db_url_text, local_registers(service, timeout_s=0.5))
    outcomes = _outcomes(imported, "company_roles")
    assert result.success and set(outcomes) == set(batch)
    by_status = service.stats()["by_status"]
    assert int(by_status.get("429", 0)) > 0 and int(by_status.get("500", 0)) > 0  # the faults really happened
    assert service.stats()["requests"] > len(batch)  # and were retried
    assert Counter(o for o, _ in outcomes.values())["error"] <= 0.05 * len(batch)


def test_an_outage_fails_the_materialization_but_keeps_the_errors_for_a_retry(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated, faults=Faults(rate_500=1.0, seed=1))
    batch = _batch_orgnrs(imported)
    result = _materialize([sub_units], instance, test_db_url_text, local_registers(service, retries=1), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "error_threshold" in failure.step_failure_data.error.message  # type: ignore[union-attr]
    outcomes = _outcomes(imported, "sub_units")
    assert set(outcomes) == set(batch)
    assert {o for o, _ in outcomes.values()} == {"error"} and {s for _, s in outcomes.values()} == {500}
    with imported.connection() as conn:
        message = conn.execute("SELECT error FROM enrichments WHERE source = 'sub_units' LIMIT 1").fetchone()[0]
    assert message == "HTTP 500 after 2 attempts"
    assert instance.get_latest_materialization_event(dg.AssetKey("sub_units")) is None
    service.set_faults(Faults())
    retried = _materialize([sub_units], instance, test_db_url_text, local_registers(service))
    assert retried.success and "error" not in {o for o, _ in _outcomes(imported, "sub_units").values()}


def test_no_database_connection_is_held_while_requests_are_in_flight(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated, faults=Faults(latency_ms=40))
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        with make_resource(test_db_url_text, pool_max=1).opened("hold-sampler") as watcher, watcher.connection() as conn:
            while not stop.is_set():
                samples.append(conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'enrichment:company_roles:%%' "
                    "AND state <> 'idle'").fetchone()[0])
                time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = _materialize([company_roles], instance, test_db_url_text, local_registers(service))
    finally:
        stop.set()
        sampler.join()
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["db_hold_share"].value <= 0.05
    assert metadata["pool_acquisitions"].value == 2  # one read, one write: nothing in between
    assert len(samples) > 50 and sum(1 for s in samples if s) <= 0.05 * len(samples)


def test_home_pages_on_private_addresses_are_refused_unless_allowed(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated)
    _materialize([website_profile], instance, test_db_url_text,
                 local_registers(service, homepage_allow_private_addresses=False))
    with imported.connection() as conn:
        rows = conn.execute(
            "SELECT e.outcome, e.error FROM enrichments e JOIN companies c USING (orgnr) "
            "WHERE e.source = 'website_profile' AND c.hjemmeside IS NOT NULL").fetchall()
    refused = [error for outcome, error in rows if outcome == "skipped" and "127.0.0.1" in (error or "")]
    assert rows and not [o for o, _ in rows if o == "ok"]
    assert len(refused) >= 0.8 * len(rows)

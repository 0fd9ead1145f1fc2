"""Registers that misbehave at a configured rate, over several company batches: nothing lost, outcomes exact.

Fault: the local registers service (a real HTTP server on a real socket) answers 429 storms, 500
bursts, timeouts, truncated (malformed) bodies and connection resets at seeded rates. Its fault
decisions are a pure function of (seed, request, how often that request was seen), so replaying
them with the client's retry count says, per company, what must happen.

Outcome: every company of the batches has exactly one row per source; each company's outcome,
HTTP status, error message and attempt count are exactly what the replayed decisions imply, and the
service's own per-route counts agree with the replay; a step fails when and only when the error
share stored for its batches passes the source's `error_threshold`; a run without faults turns every
error into the company's real outcome. Home pages are not retried, so a fault there is a recorded error and never a different
page: a robots.txt that is cut off, reset, rate-limited or failing keeps the page unfetched.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.lookups.address_location import address_location
from enrichment_pipeline.defs.lookups.annual_accounts import FILING_FORMS, annual_accounts
from enrichment_pipeline.defs.lookups.company_roles import company_roles
from enrichment_pipeline.defs.lookups.sub_units import sub_units
from enrichment_pipeline.defs.lookups.website_profile import website_profile
from enrichment_pipeline.importer.run import import_file
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.registers.faults import FaultPlan, Faults
from enrichment_pipeline.registers.homepage import HomepageFetcher, HomepageSettings
from enrichment_pipeline.registers.http import HttpSettings
from enrichment_pipeline.registers.service import RegistersService
from enrichment_pipeline.sources import error_threshold
from enrichment_pipeline_tests.conftest import BATCHES, StartService, jsonl, local_registers, make_resource, roles_answers

RANGE = ("b0000", "b0001")  # the run covers two batches, as a backfill run covers many
RANGE_BATCHES = [0, 1]
RETRIES = 2  # three attempts per request
CLIENT_TIMEOUT_S = 0.3
THRESHOLD = 0.05
LOOKUPS = [address_location, annual_accounts, company_roles, sub_units, website_profile]
SOURCES = [asset.key.to_user_string() for asset in LOOKUPS]

# What the client calls each fault once its retries are spent, and the status it keeps.
FAILURE_TEXT = {"429": "HTTP 429", "500": "HTTP 500", "timeout": "timeout", "reset": "connection reset",
                "malformed": "malformed JSON"}
FAILURE_STATUS: dict[str, int | None] = {"429": 429, "500": 500, "timeout": None, "reset": None, "malformed": 200}
# How the service counts a faulted request in its stats (a truncated body still went out as a 200).
STATS_STATUS = {"429": "429", "500": "500", "timeout": "timeout", "reset": "reset", "malformed": "200"}


@dataclass(frozen=True)
class Row:
    outcome: str
    http_status: int | None
    error: str | None
    attempts: int


@pytest.fixture()
def imported(postgres: PostgresResource, generated: Path) -> PostgresResource:
    result = import_file(postgres, generated / "enheter.json.gz", source_label="faults", batches=BATCHES)
    assert result.inserted == 3000
    return postgres


def _registers(service: RegistersService, **overrides: Any) -> RegistersResource:
    return local_registers(service, **{"timeout_s": CLIENT_TIMEOUT_S, "retries": RETRIES, "backoff_base_s": 0.01, **overrides})


def _materialize(asset: dg.AssetsDefinition, instance: dg.DagsterInstance, url: str, registers: RegistersResource,
                 threshold: float = THRESHOLD) -> dg.ExecuteInProcessResult:
    """One lookup over both batches of RANGE in one run, as a backfill run does."""
    name = asset.key.to_user_string()
    return dg.materialize(
        [asset], instance=instance, raise_on_error=False,
        resources={"postgres": make_resource(url, pool_max=2), "registers": registers},
        run_config={"ops": {name: {"config": {"error_threshold": threshold}}}},
        tags={"dagster/asset_partition_range_start": RANGE[0], "dagster/asset_partition_range_end": RANGE[1]},
    )


def _rows(postgres: PostgresResource, source: str) -> dict[str, Row]:
    with postgres.connection() as conn:
        rows = conn.execute(
            "SELECT orgnr, outcome, http_status, error, attempts FROM enrichments WHERE source = %s", [source]
        ).fetchall()
    return {orgnr: Row(outcome, status, error, attempts) for orgnr, outcome, status, error, attempts in rows}


def _full_rows(postgres: PostgresResource) -> dict[tuple[str, str], list[Any]]:
    """(orgnr, source) -> [outcome, http_status, error, data]."""
    with postgres.connection() as conn:
        rows = conn.execute("SELECT orgnr, source, outcome, http_status, error, data FROM enrichments").fetchall()
    return {(orgnr, source): rest for orgnr, source, *rest in rows}


def _rows_per_company_and_source(postgres: PostgresResource) -> Counter[tuple[str, str]]:
    with postgres.connection() as conn:
        rows = conn.execute("SELECT orgnr, source, count(*) FROM enrichments GROUP BY orgnr, source").fetchall()
    return Counter({(orgnr, source): n for orgnr, source, n in rows})


def _companies(postgres: PostgresResource) -> dict[str, str | None]:
    """Organisation number -> organisasjonsform of every company in RANGE."""
    with postgres.connection() as conn:
        rows = conn.execute("SELECT orgnr, organisasjonsform FROM companies WHERE batch = ANY(%s)",
                            [RANGE_BATCHES]).fetchall()
    return dict(rows)


def _real_roles(generated: Path, orgnrs: set[str]) -> dict[str, Row]:
    """What the roles register answers each company when nothing goes wrong."""
    return {orgnr: Row(outcome, status, None, 1) for orgnr, (outcome, status) in roles_answers(generated, orgnrs).items()}


def _real_accounts(generated: Path, companies: dict[str, str | None]) -> dict[str, Row]:
    filed = {a["organisasjonsnummer"] for a in jsonl(generated / "accounts.jsonl.gz")}
    return {orgnr: Row("ok", 200, None, 1) if orgnr in filed else Row("not_found", 404, None, 1)
            for orgnr, form in companies.items() if form in FILING_FORMS}


def _replay(faults: Faults, paths: dict[str, str], real: dict[str, Row]) -> tuple[dict[str, Row], Counter[str]]:
    """Each company's stored row and the service's status counts, from the service's own decisions.

    Every fault kind is retryable, so a company gets its real answer at the first attempt that is
    not faulted, or an error naming the last fault once RETRIES + 1 attempts are spent.
    """
    plan = FaultPlan(faults)
    expected: dict[str, Row] = {}
    served: Counter[str] = Counter()
    for orgnr, path in paths.items():
        for attempt in range(1, RETRIES + 2):
            kind = plan.decide("GET", path).kind
            if kind == "none":
                expected[orgnr] = Row(real[orgnr].outcome, real[orgnr].http_status, None, attempt)
                served[str(real[orgnr].http_status)] += 1
                break
            served[STATS_STATUS[kind]] += 1
        else:
            expected[orgnr] = Row("error", FAILURE_STATUS[kind], f"{FAILURE_TEXT[kind]} after {RETRIES + 1} attempts",
                                  RETRIES + 1)
    return expected, served


def _failed(result: dg.ExecuteInProcessResult) -> str | None:
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    return failure.step_failure_data.error.message if failure else None  # type: ignore[union-attr]


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    events = result.get_asset_materialization_events()
    return {k: v.value for k, v in events[0].materialization.metadata.items()} if events else {}


FAULT_KINDS = {
    # name: (faults, whether the replay puts the error share above the threshold)
    "429_storm": (Faults(rate_429=0.3, retry_after_s=0, seed=41), False),
    "500_bursts": (Faults(rate_500=0.08, burst=3, seed=42), True),
    "timeouts": (Faults(rate_timeout=0.15, timeout_sleep_s=1.0, seed=43), False),
    "malformed_bodies": (Faults(rate_malformed=0.45, seed=44), True),
    "connection_resets": (Faults(rate_reset=0.3, seed=45), False),
}


@pytest.mark.parametrize("kind", list(FAULT_KINDS))
def test_each_fault_kind_ends_every_company_in_exactly_the_outcome_the_service_decisions_imply(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str, kind: str,
) -> None:
    faults, above_threshold = FAULT_KINDS[kind]
    companies = _companies(imported)
    paths = {orgnr: f"/enhetsregisteret/api/enheter/{orgnr}/roller" for orgnr in companies}
    expected, served = _replay(faults, paths, _real_roles(generated, set(companies)))
    errors = sum(1 for row in expected.values() if row.outcome == "error")
    assert 0 < errors and (errors / len(companies) > THRESHOLD) == above_threshold  # the case is what it says
    service = registers_service(generated, faults=faults)

    result = _materialize(company_roles, instance, test_db_url_text, _registers(service))

    assert _rows(imported, "company_roles") == expected  # nothing lost, nothing extra, each row exact
    assert Counter(service.stats()["by_route_status"]["roller"]) == served  # the service saw exactly that
    assert result.success == (not above_threshold)
    if above_threshold:
        message = _failed(result) or ""
        assert "error_threshold" in message and f"{errors} of {len(companies)} " in message
    else:
        metadata = _metadata(result)
        assert (metadata["companies"], metadata["outcome_error"]) == (len(companies), errors)
        assert metadata["outcome_ok"] == sum(1 for row in expected.values() if row.outcome == "ok")


def test_the_step_fails_when_and_only_when_the_error_share_passes_the_threshold(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str,
) -> None:
    faults = Faults(rate_429=0.12, retry_after_s=0, rate_500=0.12, rate_malformed=0.12, rate_reset=0.12, seed=46)
    companies = _companies(imported)
    filers = {orgnr: form for orgnr, form in companies.items() if form in FILING_FORMS}
    paths = {orgnr: f"/regnskapsregisteret/regnskap/{orgnr}" for orgnr in filers}
    expected, _ = _replay(faults, paths, _real_accounts(generated, companies))
    errors = sum(1 for row in expected.values() if row.outcome == "error")
    assert errors >= 2
    service = registers_service(generated, faults=faults)
    share = errors / len(filers)  # skipped companies (forms that file nothing) are not lookups

    at_threshold = _materialize(annual_accounts, instance, test_db_url_text, _registers(service), threshold=share)
    stored_at = _rows(imported, "annual_accounts")
    service.reset()  # the same decisions again, for every company again
    with imported.connection() as conn:
        conn.execute("DELETE FROM enrichments")
    above = _materialize(annual_accounts, instance, test_db_url_text, _registers(service),
                         threshold=(errors - 1) / len(filers))
    stored_above = _rows(imported, "annual_accounts")

    assert at_threshold.success and _metadata(at_threshold)["outcome_error"] == errors
    assert not above.success and "error_threshold" in (_failed(above) or "")
    for stored in (stored_at, stored_above):  # a failed step keeps its results for the retry, like a passed one
        assert {orgnr: row for orgnr, row in stored.items() if orgnr in filers} == expected
        assert {orgnr for orgnr, row in stored.items() if row.outcome == "skipped"} == set(companies) - set(filers)


MIXED = Faults(rate_429=0.05, retry_after_s=0, rate_500=0.04, burst=2, rate_timeout=0.03, timeout_sleep_s=1.0,
               rate_malformed=0.05, rate_reset=0.05, seed=47)


def _run_all(postgres: PostgresResource, instance: dg.DagsterInstance, url: str,
             registers: RegistersResource) -> dict[str, tuple[bool, bool, int]]:
    """Every lookup in one run over RANGE; per source: (step succeeded, the error share stored for the
    live companies of RANGE passes the source's threshold, errors this run recorded)."""
    result = dg.materialize(
        LOOKUPS, instance=instance, raise_on_error=False,
        resources={"postgres": make_resource(url, pool_max=2), "registers": registers},
        tags={"dagster/asset_partition_range_start": RANGE[0], "dagster/asset_partition_range_end": RANGE[1]},
    )
    verdicts = {}
    for source in SOURCES:
        with postgres.connection() as conn:
            looked_up, in_error, errors = conn.execute(
                "SELECT count(*) FILTER (WHERE e.outcome <> 'skipped'), count(*) FILTER (WHERE e.outcome = 'error'), "
                "count(*) FILTER (WHERE e.outcome = 'error' AND e.run_id = %s) "
                "FROM enrichments e JOIN companies c USING (orgnr) "
                "WHERE e.source = %s AND c.batch = ANY(%s) AND c.deleted_at IS NULL",
                [result.run_id, source, RANGE_BATCHES]).fetchone()
        above = looked_up > 0 and in_error / looked_up > error_threshold(source)
        verdicts[source] = (result.is_node_success(source), above, errors)
    return verdicts


def test_all_faults_over_every_lookup_lose_nothing_and_a_clean_rerun_gives_every_real_outcome(
    imported: PostgresResource, generated: Path, instance: dg.DagsterInstance, registers_service: StartService,
    test_db_url_text: str,
) -> None:
    companies = set(_companies(imported))
    removed = {u["organisasjonsnummer"] for u in jsonl(generated / "units.jsonl.gz") if u["state"] == "removed"}
    service = registers_service(generated, slow_page_s=0.2)
    registers = _registers(service)
    clean = _run_all(imported, instance, test_db_url_text, registers)
    baseline = _full_rows(imported)
    _reimport(imported, generated)

    service.set_faults(MIXED)
    faulted = _run_all(imported, instance, test_db_url_text, registers)
    after_faults = _full_rows(imported)
    counts = _rows_per_company_and_source(imported)
    service.set_faults(Faults())
    rerun = _run_all(imported, instance, test_db_url_text, registers)
    after_rerun = _full_rows(imported)

    verdicts = [*clean.values(), *faulted.values(), *rerun.values()]
    assert all(success == (not above) for success, above, _ in verdicts), (clean, faulted, rerun)
    assert all(errors > 0 for _, _, errors in faulted.values()), faulted  # every lookup met faults
    # Nothing lost, nothing duplicated: one row per company and source. A removed unit (410 Gone on
    # its roles) is purged to a tombstone, so only its roles outcome may stay.
    kept = companies - removed
    assert {(o, s): counts[(o, s)] for o in kept for s in SOURCES} == {(o, s): 1 for o in kept for s in SOURCES}
    assert set(counts) <= {(o, s) for o in companies for s in SOURCES} and max(counts.values()) == 1
    for key, row in after_faults.items():  # a fault either ended as a recorded error or changed nothing
        if key[0] in kept:
            assert row == baseline[key] or (row[0] == "error" and row[2]), (key, row, baseline[key])
    assert sum(1 for k, row in after_faults.items() if row[0] == "error") > sum(1 for row in baseline.values() if row[0] == "error")
    assert {k: v for k, v in after_rerun.items() if k[0] in kept} == {k: v for k, v in baseline.items() if k[0] in kept}
    for orgnr in companies & removed:
        assert after_rerun[(orgnr, "company_roles")][0] in ("gone", "skipped")


def _reimport(postgres: PostgresResource, generated: Path) -> None:
    with postgres.connection() as conn:
        conn.execute("TRUNCATE companies, enrichments, company_profiles, rejected_units, imports, pipeline_settings "
                     "RESTART IDENTITY CASCADE")
    import_file(postgres, generated / "enheter.json.gz", source_label="faults", batches=BATCHES)


@pytest.fixture()
def private_site(tmp_path: Path) -> Path:
    """A data folder with one home page whose robots.txt forbids us everything."""
    site = {"host": "www.privat.no", "robots": "User-agent: *\nDisallow: /\n", "behaviour": "ok",
            "pages": {"/": {"status": 200, "html": "<html><head><title>Privat</title></head><body>post@privat.no</body></html>"}}}
    with gzip.open(tmp_path / "homepages.jsonl.gz", "wt", encoding="utf-8") as out:
        out.write(json.dumps(site) + "\n")
    return tmp_path


@pytest.mark.parametrize(("faults", "reason"), [
    (Faults(rate_malformed=1.0), "robots.txt unavailable (connection broken)"),
    (Faults(rate_reset=1.0), "robots.txt unavailable (connection reset)"),
    (Faults(rate_429=1.0, retry_after_s=0), "robots.txt unavailable (HTTP 429)"),
    (Faults(rate_500=1.0), "robots.txt unavailable (HTTP 500)"),
])
def test_a_robots_txt_cut_off_reset_or_rate_limited_is_unreachable_and_the_page_is_not_fetched(
    private_site: Path, registers_service: StartService, faults: Faults, reason: str,
) -> None:
    service = registers_service(private_site, faults=faults)
    settings = HomepageSettings(allow_private_addresses=True, resolve={"*": service.base_url.split("://", 1)[1]},
                                timeout_s=3.0)
    with HomepageFetcher(settings, HttpSettings(rate_limit_per_s=0)) as fetcher:
        faulted = fetcher.fetch("www.privat.no")
        asked_while_faulted = service.stats()["by_route"].get("homepage", 0)
        service.set_faults(Faults())
        healthy = fetcher.fetch("www.privat.no")  # the failure was not cached as "no rules"

    assert (faulted.outcome, faulted.reason) == ("error", reason)
    assert asked_while_faulted == 1  # robots.txt only: an unknown rule set forbids the page (RFC 9309)
    assert (healthy.outcome, healthy.reason) == ("skipped", "robots.txt disallows")
    assert service.stats()["by_route"]["homepage"] == 2

"""The change-feed sensor and `sync-updates`, walked through each cursor case against the local
registers service and a real PostgreSQL: first tick, nothing new, several pages, a `Fjernet` purge,
the same page twice, and a crash in the middle of a page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.defs.companies.sensors import register_change_feed, reported_in
from enrichment_pipeline.errors import FeedError
from enrichment_pipeline.importer.feed import sync_updates
from enrichment_pipeline.importer.validate import batch_of, partition_key
from enrichment_pipeline.lookups.registers_resource import RegistersResource
from enrichment_pipeline.registers.clients import BrregClient
from enrichment_pipeline.registers.http import Fetched
from enrichment_pipeline.store import changes
from enrichment_pipeline.store.enrichments import Outcome, write_outcomes
from enrichment_pipeline_tests.conftest import BATCHES, StartService, jsonl, local_registers, make_resource
from enrichment_pipeline_tests.defs.conftest import feed, snapshot


def _last_kinds(generated: Path, upto_id: int | None = None) -> dict[str, str]:
    """orgnr -> the endringstype of its last update (at or below `upto_id`)."""
    last: dict[str, str] = {}
    for update in feed(generated):
        if upto_id is None or update["oppdateringsid"] <= upto_id:
            last[update["organisasjonsnummer"]] = update["endringstype"]
    return last


def _expected_states(generated: Path, upto_id: int | None = None) -> dict[str, str]:
    """What each unit the feed touched must be afterwards: active, deleted or removed (purged)."""
    last = _last_kinds(generated, upto_id)
    api_state = {u["organisasjonsnummer"]: u["state"] for u in jsonl(generated / "units.jsonl.gz") if u["organisasjonsnummer"] in last}
    expected = {}
    for orgnr, kind in last.items():
        if kind == "Sletting":
            expected[orgnr] = "deleted"
        elif kind == "Fjernet":
            expected[orgnr] = "removed"
        else:  # Ny and Endring fetch the unit as the API has it now
            expected[orgnr] = {"active": "active", "deleted": "deleted", "removed": "removed"}[api_state[orgnr]]
    return expected


def _stored_states(postgres: PostgresResource, generated: Path, orgnrs: list[str]) -> dict[str, str]:
    """The state of each unit as stored; an active unit must hold the API's record field for field."""
    api_records = {u["organisasjonsnummer"]: u["record"] for u in jsonl(generated / "units.jsonl.gz") if u["state"] == "active"}
    states = {}
    with postgres.connection() as conn:
        for orgnr in orgnrs:
            row = conn.execute("SELECT record_hash, deleted_at, record FROM companies WHERE orgnr = %s", [orgnr]).fetchone()
            if row is None:
                states[orgnr] = "absent"
            elif row[0] == "purged":
                states[orgnr] = "removed"
            elif row[1] is not None:
                states[orgnr] = "deleted"
            else:
                same = conn.execute("SELECT register_fields(%s::jsonb) = register_fields(%s::jsonb)",
                                    [json.dumps(row[2]), json.dumps(api_records[orgnr])]).fetchone()[0]
                states[orgnr] = "active" if same else "active, but not the API's record"
    return states


def _changed(before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]]) -> set[str]:
    return {orgnr for orgnr, row in after.items() if before.get(orgnr) != row}


def _tick(instance: dg.DagsterInstance, url: str, registers: RegistersResource, cursor: str | None) -> dg.SensorResult:
    resources = {"postgres": make_resource(url, pool_max=2), "registers": registers}
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        result = register_change_feed(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _partitions(result: dg.SensorResult) -> set[str]:
    return {event.partition for event in result.asset_events or []}


def test_first_tick_before_any_import_skips_and_applies_nothing(
    postgres: PostgresResource, generated: Path, registers_service: StartService, instance: dg.DagsterInstance,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated)
    result = _tick(instance, test_db_url_text, local_registers(service), None)
    assert not result.asset_events and "no import yet" in (result.skip_reason.skip_message or "")
    assert changes.feed_position(postgres) is None and snapshot(postgres) == {}
    assert service.stats()["requests"] == 0


def test_first_tick_applies_the_feed_from_the_dumps_build_time_and_reports_exactly_the_changed_batches(
    imported: PostgresResource, generated: Path, registers_service: StartService, instance: dg.DagsterInstance,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated)
    before = snapshot(imported)
    result = _tick(instance, test_db_url_text, local_registers(service), None)
    after = snapshot(imported)

    updates = feed(generated)
    expected = _expected_states(generated)
    assert _stored_states(imported, generated, sorted(expected)) == expected
    changed = _changed(before, after)
    assert changed <= set(expected)  # nothing the feed did not name was touched
    assert {o for o, s in expected.items() if s != "active" or o not in before} <= changed
    assert _partitions(result) == {partition_key(batch_of(o, BATCHES)) for o in changed}
    assert changes.feed_position(imported) == updates[-1]["oppdateringsid"]
    assert json.loads(result.cursor or "{}")["feed_position"] == updates[-1]["oppdateringsid"]
    new_units = {u["organisasjonsnummer"] for u in updates if u["endringstype"] == "Ny"}
    assert len(after) == len(before) + len(new_units - set(before))


def test_a_tick_with_nothing_new_changes_nothing_and_reports_nothing(
    imported: PostgresResource, generated: Path, registers_service: StartService, instance: dg.DagsterInstance,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated)
    registers = local_registers(service)
    first = _tick(instance, test_db_url_text, registers, None)
    assert first.asset_events and reported_in(first.cursor) == changes.pending_batches(imported)
    before, position = snapshot(imported), changes.feed_position(imported)

    second = _tick(instance, test_db_url_text, registers, first.cursor)

    assert not second.asset_events and second.skip_reason is not None
    assert snapshot(imported) == before and changes.feed_position(imported) == position
    assert changes.pending_batches(imported) == {}  # the first tick's report was stored, so it left the outbox
    assert reported_in(second.cursor) == {}


def test_several_pages_are_applied_in_order_with_the_cursor_after_each_page(
    imported: PostgresResource, generated: Path, registers_service: StartService,
) -> None:
    service = registers_service(generated)
    ids = [u["oppdateringsid"] for u in feed(generated)]
    positions: list[int | None] = []

    report = sync_updates(imported, BrregClient(service.base_url), page_size=7,
                          progress=lambda r: positions.append(changes.feed_position(imported)))

    assert report.pages == -(-len(ids) // 7) and report.updates == len(ids)
    assert positions == [ids[min(i + 6, len(ids) - 1)] for i in range(0, len(ids), 7)]
    expected = _expected_states(generated)
    assert _stored_states(imported, generated, sorted(expected)) == expected


def test_fjernet_purges_the_unit_and_everything_enriched_about_it(
    imported: PostgresResource, generated: Path, registers_service: StartService,
) -> None:
    service = registers_service(generated)
    removed = [o for o, kind in _last_kinds(generated).items() if kind == "Fjernet"]
    assert removed
    for source in ("company_roles", "website_profile"):
        write_outcomes(imported, source, [Outcome(o, "ok", 200, data={"navn": "personal data"}) for o in removed], run_id="r")
    with imported.transaction() as conn:
        conn.execute("INSERT INTO company_profiles (orgnr, batch, profile, sources_ok, sources_pending) "
                     "SELECT orgnr, batch, '{}'::jsonb, 2, 3 FROM companies WHERE orgnr = ANY(%s)", [removed])

    sync_updates(imported, BrregClient(service.base_url))

    with imported.connection() as conn:
        left = conn.execute("SELECT count(*) FROM enrichments WHERE orgnr = ANY(%s)", [removed]).fetchone()[0]
        profiles = conn.execute("SELECT count(*) FROM company_profiles WHERE orgnr = ANY(%s)", [removed]).fetchone()[0]
        rows = conn.execute("SELECT navn, record, deleted_at IS NOT NULL FROM companies WHERE orgnr = ANY(%s)", [removed]).fetchall()
    assert left == 0 and profiles == 0
    assert sorted(rows, key=str) == sorted([("(fjernet)", {"organisasjonsnummer": o}, True) for o in removed], key=str)


def test_applying_the_same_updates_twice_changes_nothing(
    imported: PostgresResource, generated: Path, registers_service: StartService,
) -> None:
    service = registers_service(generated)
    brreg = BrregClient(service.base_url)
    first = sync_updates(imported, brreg, page_size=20)
    changes.acknowledge(imported, changes.pending_batches(imported))
    before = snapshot(imported)
    with imported.transaction() as conn:  # as if the cursor had not been stored: every page comes again
        conn.execute("DELETE FROM sync_cursors")

    again = sync_updates(imported, brreg, page_size=20)

    assert again.updates == first.updates and again.position == first.position
    assert snapshot(imported) == before
    assert changes.pending_batches(imported) == {}


class _CrashingBrreg(BrregClient):
    """The process dies after `survive` unit fetches: a crash in the middle of a page."""

    def __init__(self, base_url: str, survive: int) -> None:
        super().__init__(base_url)
        self.left = survive

    def unit(self, orgnr: str) -> Fetched:
        self.left -= 1
        if self.left < 0:
            raise SystemExit("killed in the middle of a page")
        return super().unit(orgnr)


class _CrashingRegisters(RegistersResource):
    survive: int = 0

    def brreg(self) -> BrregClient:
        return _CrashingBrreg(str(self.brreg_api_url), self.survive)


def test_a_crash_in_the_middle_of_a_page_applies_none_of_it_and_the_next_tick_loses_nothing(
    imported: PostgresResource, generated: Path, registers_service: StartService, instance: dg.DagsterInstance,
    test_db_url_text: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = registers_service(generated)
    monkeypatch.setattr("enrichment_pipeline.defs.companies.sensors.SENSOR_PAGE_SIZE", 20)
    ids = [u["oppdateringsid"] for u in feed(generated)]
    fetches_on_first_page = sum(1 for k in _last_kinds(generated, ids[19]).values() if k in ("Ny", "Endring"))
    crashing = _CrashingRegisters(**{**local_registers(service).model_dump(), "survive": fetches_on_first_page + 3})
    before = snapshot(imported)

    with pytest.raises(SystemExit):
        _tick(instance, test_db_url_text, crashing, None)

    assert changes.feed_position(imported) == ids[19]  # the first page, whole; nothing of the second
    expected_first = _expected_states(generated, ids[19])
    assert _stored_states(imported, generated, sorted(expected_first)) == expected_first
    later = set(_last_kinds(generated)) - set(expected_first)
    assert all(before.get(o) == row for o, row in snapshot(imported).items() if o in later)

    result = _tick(instance, test_db_url_text, local_registers(service), None)

    expected = _expected_states(generated)
    assert _stored_states(imported, generated, sorted(expected)) == expected
    assert changes.feed_position(imported) == ids[-1]
    changed = _changed(before, snapshot(imported))
    assert _partitions(result) == {partition_key(batch_of(o, BATCHES)) for o in changed}


def test_a_feed_that_cannot_be_read_fails_the_tick_with_one_line_and_moves_nothing(
    imported: PostgresResource, generated: Path, registers_service: StartService, instance: dg.DagsterInstance,
    test_db_url_text: str,
) -> None:
    service = registers_service(generated)
    dead = local_registers(service, brreg_api_url=service.base_url + "/nowhere", retries=0)
    before = snapshot(imported)
    with pytest.raises(FeedError, match=r"^the change feed at .* could not be read: .*404") as failure:
        _tick(instance, test_db_url_text, dead, None)
    assert "\n" not in str(failure.value)
    assert snapshot(imported) == before and changes.feed_position(imported) is None


def test_sync_updates_command_applies_the_feed_once_and_shares_the_cursor_with_the_sensor(
    imported: PostgresResource, generated: Path, registers_service: StartService, instance: dg.DagsterInstance,
    test_db_url_text: str, tmp_path: Path,
) -> None:
    service = registers_service(generated)
    env = {**os.environ, "DATABASE_URL": test_db_url_text, "BRREG_API_URL": service.base_url,
           "ENRICHMENT_HTTP_RATE_LIMIT_PER_S": "0", "ENRICHMENT_STATE_DIR": str(tmp_path)}
    env.pop("ENRICHMENT_DAGSTER_PG_URL", None)
    command = [str(Path(sys.executable).with_name("enrichment-pipeline")), "sync-updates", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    ids = [u["oppdateringsid"] for u in feed(generated)]
    assert (report["updates"], report["position"]) == (len(ids), ids[-1])
    assert report["reported_batches"] == report["changed_batches"] > 0
    assert changes.pending_batches(imported) == {}  # reported to Dagster, then taken out of the outbox

    before = snapshot(imported)
    result = _tick(instance, test_db_url_text, local_registers(service), None)
    assert not result.asset_events and snapshot(imported) == before
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(again.stdout)["updates"] == 0

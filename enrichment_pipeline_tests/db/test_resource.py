"""The Postgres resource against a real server: lifecycle, limits, faults, attribution."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from enrichment_pipeline.db.resource import PostgresResource, application_name
from enrichment_pipeline.errors import PoolExhausted
from enrichment_pipeline_tests.conftest import make_resource


def _backends(observer: PostgresResource, app: str) -> list[tuple[int, str]]:
    with observer.connection() as conn:
        return conn.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE application_name = %s ORDER BY pid", [app]
        ).fetchall()


def test_settings_are_applied_to_every_pooled_connection(test_db_url_text: str) -> None:
    resource = make_resource(test_db_url_text, statement_timeout_ms=4321, idle_in_transaction_timeout_ms=9876)
    with resource.opened("settings-check") as pg, pg.connection() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "4321ms"
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0] == "9876ms"
        assert conn.execute("SHOW application_name").fetchone()[0] == "enrichment:settings-check::"


def test_settings_fall_back_to_environment_then_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENRICHMENT_PG_POOL_MAX", "7")
    resolved = PostgresResource(acquire_timeout_s=3.5).settings()
    assert (resolved.pool_max, resolved.acquire_timeout_s, resolved.pool_min) == (7, 3.5, 0)


def test_idle_pool_drains_to_pool_min_within_its_bound(test_db_url_text: str, observer: PostgresResource) -> None:
    resource = make_resource(test_db_url_text, pool_min=0, pool_max=3, idle_timeout_s=0.3)
    with resource.opened("drain-test") as pg:
        with pg.connection(), pg.connection(), pg.connection():
            assert len(_backends(observer, "enrichment:drain-test::")) == 3
        assert pg.pool_size() == 3
        bound = pg.settings().idle_drain_bound_s
        deadline = time.monotonic() + bound + 0.5
        while pg.pool_size() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pg.pool_size() == 0
        assert _backends(observer, "enrichment:drain-test::") == []


def test_idle_pool_keeps_its_floor(test_db_url_text: str) -> None:
    resource = make_resource(test_db_url_text, pool_min=1, pool_max=3, idle_timeout_s=0.2)
    with resource.opened("floor-test") as pg:
        with pg.connection(), pg.connection(), pg.connection():
            pass
        time.sleep(pg.settings().idle_drain_bound_s + 0.4)
        assert pg.pool_size() == 1


def test_asking_beyond_pool_max_fails_within_acquire_timeout_naming_the_pool(test_db_url_text: str) -> None:
    resource = make_resource(test_db_url_text, pool_max=2, acquire_timeout_s=0.5)
    with resource.opened("exhaust-test") as pg, pg.connection(), pg.connection():
        started = time.monotonic()
        with pytest.raises(PoolExhausted, match=r"pool 'enrichment:exhaust-test::' gave no connection within 0.5 s"):
            with pg.connection():
                pass
        elapsed = time.monotonic() - started
        assert 0.45 <= elapsed < 1.5
        assert pg.stats().timeouts == 1


def test_waiter_queue_is_bounded(test_db_url_text: str) -> None:
    resource = make_resource(test_db_url_text, pool_max=1, max_waiting=1, acquire_timeout_s=2)
    with resource.opened("queue-test") as pg, pg.connection():
        waiter = threading.Thread(target=lambda: pytest.raises(PoolExhausted, lambda: pg.connection().__enter__()))
        waiter.start()
        time.sleep(0.2)
        with pytest.raises(PoolExhausted, match="max_waiting"):
            with pg.connection():
                pass
        waiter.join()
        assert pg.stats().queue_full == 1


def test_backend_killed_while_idle_is_replaced_without_the_caller_noticing(
    test_db_url_text: str, observer: PostgresResource
) -> None:
    resource = make_resource(test_db_url_text, pool_min=1, pool_max=1)
    with resource.opened("kill-test") as pg:
        with pg.connection() as conn:
            first_pid = conn.info.backend_pid
        with observer.connection() as conn:
            assert conn.execute("SELECT pg_terminate_backend(%s)", [first_pid]).fetchone()[0] is True
        time.sleep(0.2)
        with pg.transaction() as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1
            assert conn.info.backend_pid != first_pid


def test_transaction_left_open_is_rolled_back_on_return(postgres: PostgresResource) -> None:
    with postgres.connection() as conn:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO pipeline_settings (key, value) VALUES ('left-open', 'x')")
    with postgres.connection() as conn:
        assert conn.execute("SELECT count(*) FROM pipeline_settings WHERE key = 'left-open'").fetchone()[0] == 0
        assert conn.info.transaction_status.name == "IDLE"


def test_transaction_rolls_back_on_error_and_commits_on_success(postgres: PostgresResource) -> None:
    with pytest.raises(RuntimeError):
        with postgres.transaction() as conn:
            conn.execute("INSERT INTO pipeline_settings (key, value) VALUES ('failed', 'x')")
            raise RuntimeError("boom")
    with postgres.transaction() as conn:
        conn.execute("INSERT INTO pipeline_settings (key, value) VALUES ('kept', 'y')")
    with postgres.connection() as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM pipeline_settings ORDER BY key").fetchall()]
    assert keys == ["kept"]


def test_leak_warning_names_the_holder_and_where_it_was_acquired(
    test_db_url_text: str, caplog: pytest.LogCaptureFixture
) -> None:
    resource = make_resource(test_db_url_text, leak_threshold_s=0.2)
    with caplog.at_level(logging.WARNING, logger="enrichment_pipeline.db.resource"):
        with resource.opened("leak-test") as pg:
            with pg.connection("company_roles"):
                time.sleep(0.7)
            leaks = pg.stats().leak_warnings
    messages = [r.getMessage() for r in caplog.records if "leak_threshold_s" in r.getMessage()]
    assert leaks == 1 and len(messages) == 1
    assert "by enrichment:company_roles::" in messages[0]
    assert "acquired at test_resource.py:" in messages[0]


def test_application_name_is_visible_in_pg_stat_activity(postgres: PostgresResource, observer: PostgresResource) -> None:
    name = application_name("company_roles", "b0007", "0123456789abcdef")
    assert name == "enrichment:company_roles:b0007:01234567"
    with postgres.connection(name) as conn:
        pid = conn.info.backend_pid
        rows = _backends(observer, name)
    assert rows == [(pid, "idle")]


def test_application_name_is_cut_to_63_bytes() -> None:
    name = application_name("a" * 80, "b0001", "run")
    assert len(name.encode()) == 63 and name.startswith("enrichment:aaa")


def test_statistics_count_acquisitions_and_hold_time(postgres: PostgresResource) -> None:
    before = postgres.stats()
    for _ in range(3):
        with postgres.connection() as conn:
            conn.execute("SELECT pg_sleep(0.02)")
    delta = postgres.stats().minus(before)
    assert delta.acquisitions == 3
    assert delta.held_ms >= 60
    assert postgres.stats().in_use == 0


def test_pool_monitor_warns_above_40_and_errors_above_60_percent_once_each(test_db_url_text: str) -> None:
    records: list[tuple[str, str]] = []

    class Recorder:
        def warning(self, message: str) -> None:
            records.append(("warning", message))

        def error(self, message: str) -> None:
            records.append(("error", message))

    resource = make_resource(test_db_url_text, pool_max=4, monitor_interval_s=0.1)
    resource.open("monitor-test", logger=Recorder())
    try:
        with resource.connection(), resource.connection():  # 2/4 = 50%: a warning
            time.sleep(0.35)
        with resource.connection(), resource.connection(), resource.connection():  # 3/4 = 75%: an error
            time.sleep(0.35)
        stats = resource.stats()
    finally:
        resource.close()
    assert [level for level, _ in records] == ["warning", "error"]
    assert "at 2/4 connections (50%), above the warning share 40%" in records[0][1]
    assert "at 3/4 connections (75%), above the error share 60%" in records[1][1]
    assert (stats.utilisation_warnings, stats.utilisation_errors, stats.peak_in_use) == (1, 1, 3)


def test_a_measurement_window_restarts_the_peak(postgres: PostgresResource) -> None:
    with postgres.connection(), postgres.connection():
        pass
    assert postgres.stats().peak_in_use == 2
    postgres.begin_window()
    with postgres.connection():
        pass
    assert postgres.stats().peak_in_use == 1

"""Bad configuration gets a one-line error that names the host, never the password; no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from enrichment_pipeline.db.urls import DatabaseUrl

SECRET = "s3cr3t-Pa55"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    full_env.update(env)
    return subprocess.run([sys.executable, "-m", "enrichment_pipeline.cli.main", *args],
                          capture_output=True, text=True, timeout=60, env=full_env)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"mysql://bob:{SECRET}@db.example:3306/x", "has scheme 'mysql'"),
        (f"postgresql://bob:{SECRET}@127.0.0.1:99999/x", "Port out of range"),
        (f"postgresql://bob:{SECRET}@/x", "names no host"),
        (f"postgresql://bob:{SECRET}@127.0.0.1:1/enrichment", "cannot connect to PostgreSQL at 127.0.0.1:1/enrichment as bob"),
    ],
)
def test_bad_database_url_gives_one_line_without_password(url: str, expected: str) -> None:
    result = _cli("status", DATABASE_URL=url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_wrong_password_names_user_and_host_not_password(test_db_url: DatabaseUrl) -> None:
    wrong = DatabaseUrl(test_db_url.user, SECRET, test_db_url.host, test_db_url.port, test_db_url.database)
    result = _cli("status", DATABASE_URL=wrong.render(show_password=True))
    assert result.returncode == 2
    assert f"at {test_db_url.host}:{test_db_url.port}/{test_db_url.database} as {test_db_url.user}" in result.stderr
    assert "password authentication failed" in result.stderr and "check the user name and password" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_debug_shows_the_traceback() -> None:
    result = _cli("--debug", "status", DATABASE_URL=f"mysql://bob:{SECRET}@h/x")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_db_url_redacts_the_password_unless_asked(test_db_url: DatabaseUrl) -> None:
    redacted = _cli("db", "url", DATABASE_URL=test_db_url.render(show_password=True))
    assert redacted.returncode == 0
    assert redacted.stdout.strip() == test_db_url.redacted()
    if test_db_url.password:
        assert test_db_url.password not in redacted.stdout
        shown = _cli("db", "url", "--show-password", DATABASE_URL=test_db_url.render(show_password=True))
        assert test_db_url.password in shown.stdout


def test_the_resource_never_shows_its_password_in_repr_or_str() -> None:
    from enrichment_pipeline.db.resource import PostgresResource

    resource = PostgresResource(database_url=f"postgresql://bob:{SECRET}@db.example:5432/x")
    assert SECRET not in repr(resource) and SECRET not in str(resource)
    assert "postgresql://bob:***@db.example:5432/x" in repr(resource)

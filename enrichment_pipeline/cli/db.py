"""`enrichment-pipeline db start|stop|upgrade|url`."""

from __future__ import annotations

import argparse

from enrichment_pipeline import settings
from enrichment_pipeline.cli.common import project_postgres
from enrichment_pipeline.db import connect, embedded, migrate


def start(args: argparse.Namespace) -> int:
    if not connect.uses_embedded():
        url = connect.project_database_url()
        print(f"DATABASE_URL is set: using {url.render(show_password=args.show_password)} (no embedded server started)")
        return 0
    server = embedded.start(settings.state_dir())
    url = connect.project_database_url()
    connect.dagster_database_url()
    print(f"embedded PostgreSQL running (pid {server.pid}, data {server.data_dir})")
    print(url.render(show_password=args.show_password))
    return 0


def stop(args: argparse.Namespace) -> int:
    if not connect.uses_embedded():
        print("DATABASE_URL is set: there is no embedded server to stop")
        return 0
    stopped = embedded.stop(settings.state_dir())
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


def upgrade(args: argparse.Namespace) -> int:
    with project_postgres("db-upgrade", upgrade=False) as postgres:
        before, after = migrate.upgrade(postgres)
    print(f"schema at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))
    return 0


def url(args: argparse.Namespace) -> int:
    target = connect.dagster_database_url() if args.dagster else connect.project_database_url()
    print(target.render(show_password=args.show_password))
    return 0

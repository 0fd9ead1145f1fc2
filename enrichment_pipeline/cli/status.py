"""`enrichment-pipeline status [--json]`."""

from __future__ import annotations

import argparse

from enrichment_pipeline import ATTRIBUTION
from enrichment_pipeline.cli.common import print_json, project_postgres
from enrichment_pipeline.db import connect
from enrichment_pipeline.store.status import status_report


def run(args: argparse.Namespace) -> int:
    with project_postgres("status") as postgres:
        report = status_report(postgres)
    if args.json:
        print_json(report)
        return 0
    where = connect.project_database_url().where()
    print(f"database   {where}{' (embedded)' if connect.uses_embedded() else ''}")
    print(f"companies  {report['companies']:,} live, {report['deleted']:,} deleted, {report['rejected']:,} rejected, {report['batches']:,} batches")
    header = "source".ljust(18) + "".join(k.rjust(10) for k in next(iter(report["sources"].values())))
    print(header)
    for source, counts in report["sources"].items():
        print(source.ljust(18) + "".join(f"{v:>10,}" for v in counts.values()))
    print(ATTRIBUTION)
    return 0

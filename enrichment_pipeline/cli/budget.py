"""`enrichment-pipeline budget` and `connections`: the worst case, and what is in use right now."""

from __future__ import annotations

import argparse
import sys
import time

from enrichment_pipeline.budget.check import project_budget
from enrichment_pipeline.budget.derive import Budget
from enrichment_pipeline.cli.common import print_json, project_postgres
from enrichment_pipeline.store.activity import activity


def run(args: argparse.Namespace) -> int:
    if args.max_connections is not None:
        budget = project_budget(None, max_connections=args.max_connections)
    else:
        with project_postgres("budget", upgrade=False) as postgres:
            budget = project_budget(postgres)
    if args.json:
        print_json(budget.as_dict())
    else:
        print("worst-case connections of this configuration, term by term:")
        print(budget.derivation())
        print("fits" if budget.fits else f"DOES NOT FIT: {budget.advice()}")
    return 0 if budget.fits or not args.check else 3


def _print_activity(rows: list[dict[str, object]], budget: Budget, total: int) -> None:
    print(f"{'application_name':<48} {'state':<22} {'count':>5} {'oldest xact s':>13} {'oldest query s':>14}")
    for row in rows:
        print(f"{str(row['application_name'])[:48]:<48} {str(row['state'])[:22]:<22} {row['count']:>5} "
              f"{row['oldest_xact_s'] if row['oldest_xact_s'] is not None else '-':>13} "
              f"{row['oldest_query_s'] if row['oldest_query_s'] is not None else '-':>14}")
    print(f"in use {total} of {budget.available} the server allows; this configuration's worst case is {budget.worst_case}")


def connections(args: argparse.Namespace) -> int:
    with project_postgres("connections", upgrade=False) as postgres:
        budget = project_budget(postgres)
        while True:
            rows, total = activity(postgres)
            if args.json:
                print_json({"total": total, "available": budget.available, "worst_case": budget.worst_case, "groups": rows})
            else:
                _print_activity(rows, budget, total)
            if not args.watch:
                return 0
            sys.stdout.flush()
            time.sleep(args.interval)
            print()

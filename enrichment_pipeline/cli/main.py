"""`enrichment-pipeline`: one console script, one small module per command group.

Errors a user can act on print as one line (`error: ...`) with a non-zero exit; a traceback only
with `--debug`. Nothing printed ever carries a password.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from enrichment_pipeline.db.urls import scrub_secrets
from enrichment_pipeline.errors import UserFacingError

def _add_db(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("db", help="the project's PostgreSQL: start, stop, upgrade")
    actions = parser.add_subparsers(dest="db_command", required=True)
    start = actions.add_parser("start", help="start (or reuse) the embedded server and print its URL")
    start.add_argument("--show-password", action="store_true", help="print the URL with its password")
    start.set_defaults(handler="enrichment_pipeline.cli.db:start")
    actions.add_parser("stop", help="stop the embedded server").set_defaults(handler="enrichment_pipeline.cli.db:stop")
    actions.add_parser("upgrade", help="apply schema migrations").set_defaults(handler="enrichment_pipeline.cli.db:upgrade")
    url = actions.add_parser("url", help="print the database URL (password redacted)")
    url.add_argument("--show-password", action="store_true")
    url.add_argument("--dagster", action="store_true", help="the URL of Dagster's own storage")
    url.set_defaults(handler="enrichment_pipeline.cli.db:url")


def _add_status(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("status", help="companies, rejects, batches and per-source outcomes")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler="enrichment_pipeline.cli.status:run")


def _add_dev(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("dev", help="Dagster webserver and daemon on the project's instance")
    parser.add_argument("--port", type=int, default=3000)
    parser.set_defaults(handler="enrichment_pipeline.cli.dev:run")


def _add_generate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("generate", help="write synthetic register data in the real formats", add_help=False)
    parser.set_defaults(handler="enrichment_pipeline.registers.generator:main", passthrough=True)


def _add_registers(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("registers", help="the local registers service")
    actions = parser.add_subparsers(dest="registers_command", required=True)
    serve = actions.add_parser("serve", help="serve generated data like the public registers", add_help=False)
    serve.set_defaults(handler="enrichment_pipeline.registers.service:main", passthrough=True)


def _add_import(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("import", help="import a register dump (path or URL) into companies")
    parser.add_argument("source", help="a path to enheter.json.gz / enheter.csv.gz, or a URL")
    parser.add_argument("--batches", type=int, default=None, help="number of company batches (fixed at the first import)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler="enrichment_pipeline.cli.pipeline:import_dump")


def _add_sync(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sync-updates", help="apply the register's change feed once, from the stored cursor")
    parser.add_argument("--from-id", type=int, default=None,
                        help="first oppdateringsid to apply when no cursor is stored yet (default: from the last import)")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after the page that passes this time")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler="enrichment_pipeline.cli.pipeline:sync_updates")


def _add_show(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("show", help="one company as the register has it, with every enrichment")
    parser.add_argument("orgnr")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler="enrichment_pipeline.cli.pipeline:show")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="generate, serve, import and enrich N companies end to end")
    parser.add_argument("--companies", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", type=int, default=None, help="change-feed updates to generate (default N/100)")
    parser.add_argument("--reset", action="store_true", help="allow emptying the database DATABASE_URL names")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler="enrichment_pipeline.cli.demo:run")


def _add_budget(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("budget", help="worst-case connections of this configuration vs what the server allows")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 3 when the worst case does not fit")
    parser.add_argument("--max-connections", type=int, default=None, help="compare with N instead of the live server")
    parser.set_defaults(handler="enrichment_pipeline.cli.budget:run")
    conns = sub.add_parser("connections", help="pg_stat_activity by application_name and state, with the budget")
    conns.add_argument("--json", action="store_true")
    conns.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    conns.add_argument("--interval", type=float, default=2.0)
    conns.set_defaults(handler="enrichment_pipeline.cli.budget:connections")


_COMMANDS = (_add_budget, _add_db, _add_status, _add_dev, _add_generate, _add_registers, _add_import, _add_sync, _add_show,
             _add_demo)


def _dispatch(args: argparse.Namespace) -> int:
    """Import the command's module only now, so `db url` does not pay for importing Dagster.

    Commands marked `passthrough` parse their own arguments (`main(argv) -> int`).
    """
    import importlib

    module_name, function = args.handler.split(":")
    handler = getattr(importlib.import_module(module_name), function)
    return int(handler(args.rest) if getattr(args, "passthrough", False) else handler(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enrichment-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    args.rest = rest
    if rest and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _dispatch(args)
    except UserFacingError as exc:
        if args.debug:
            raise
        print(f"error: {scrub_secrets(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: still one line unless --debug
        if args.debug:
            raise
        message = scrub_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        print(f"error: {type(exc).__name__}: {message} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

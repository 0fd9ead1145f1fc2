"""Import speed: one million generated units (JSON dump) into an empty database.

Prints one JSON line: rows, wall_s, rows_per_s, peak_rss_mb (of the importing process), and the
floor on this machine measured in the same run: a plain COPY of the same rows, already as CSV,
into an empty table shaped like `companies` (copy_floor_s), with ratio_to_copy = wall_s / floor.

    .venv/bin/python benchmarks/import_speed.py [--companies 1000000]

Uses DATABASE_URL when set, else the embedded server; works in a database of its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from psycopg import sql

from enrichment_pipeline import settings
from enrichment_pipeline.db import connect, migrate
from enrichment_pipeline.db.resource import PostgresResource

BENCH_DATABASE = "enrichment_bench"
TARGETS = {"wall_s": 30.0, "peak_rss_mb": 400.0, "ratio_to_copy": 4.0}


def _fresh_database() -> str:
    server = connect.server_url()
    with PostgresResource(database_url=server.render(show_password=True), pool_max=1).opened("bench-admin") as admin:
        with admin.connection() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DATABASE)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DATABASE)))
    url = server.with_database(BENCH_DATABASE).render(show_password=True)
    with PostgresResource(database_url=url).opened("bench-migrate") as pg:
        migrate.upgrade(pg)
    return url


def _dataset(companies: int) -> Path:
    from enrichment_pipeline.registers.generator import generate

    out = settings.state_dir() / "bench" / f"units-{companies}"
    manifest = out / "manifest.json"
    if not (manifest.exists() and json.loads(manifest.read_text()).get("companies") == companies):
        generate(out, companies=companies, seed=42)
    return out / "enheter.json.gz"


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from enrichment_pipeline.db.resource import PostgresResource
from enrichment_pipeline.importer.run import import_file
url, path = sys.argv[1], Path(sys.argv[2])
with PostgresResource(database_url=url, pool_max=2, statement_timeout_ms=3_600_000).opened("bench-import") as pg:
    started = time.monotonic()
    result = import_file(pg, path, source_label="benchmark", batches=1200)
    wall = time.monotonic() - started
print(json.dumps({"rows": result.accepted, "wall_s": wall, "rejected": sum(result.rejected.values()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _import_in_child(url: str, dump: Path) -> dict[str, float]:
    """The import runs in a process of its own, so its peak RSS is the import's alone."""
    out = subprocess.run([sys.executable, "-c", _CHILD, url, str(dump)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"import failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _copy_floor(url: str) -> float:
    """A plain COPY of the imported rows, exported as CSV, into an empty table like companies."""
    with PostgresResource(database_url=url, pool_max=1, statement_timeout_ms=3_600_000).opened("bench-floor") as pg, \
            tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "companies.csv"
        with pg.connection() as conn, open(csv_path, "wb") as out:
            with conn.cursor().copy("COPY companies TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    out.write(chunk)
        with pg.connection() as conn:
            conn.execute("DROP TABLE IF EXISTS floor_companies")
        # The best plain COPY the server allows: table created in the loading transaction, FREEZE.
        with pg.transaction() as conn, open(csv_path, "rb") as source:
            started = time.monotonic()
            conn.execute("CREATE TABLE floor_companies (LIKE companies INCLUDING ALL)")
            with conn.cursor().copy("COPY floor_companies FROM STDIN (FORMAT csv, FREEZE)") as copy:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
            floor = time.monotonic() - started
        with pg.connection() as conn:
            conn.execute("DROP TABLE floor_companies")
    return floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=1_000_000)
    args = parser.parse_args()
    dump = _dataset(args.companies)
    url = _fresh_database()
    imported = _import_in_child(url, dump)
    floor = _copy_floor(url)
    ratio = imported["wall_s"] / floor if floor else float("inf")
    line = {
        "benchmark": "import_speed",
        "rows": int(imported["rows"]),
        "wall_s": round(imported["wall_s"], 2),
        "rows_per_s": round(imported["rows"] / imported["wall_s"]),
        "peak_rss_mb": round(imported["peak_rss_mb"], 1),
        "copy_floor_s": round(floor, 2),
        "ratio_to_copy": round(ratio, 2),
        "dump_mb": round(dump.stat().st_size / 1e6, 1),
        "targets": TARGETS,
        "meets_targets": imported["wall_s"] <= TARGETS["wall_s"] and imported["peak_rss_mb"] <= TARGETS["peak_rss_mb"]
        and ratio <= TARGETS["ratio_to_copy"],
    }
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast `enrichment-pipeline generate` writes a full-size data directory.

Generates COMPANIES units (one million by default, about the size of the real register) into a
temporary directory and prints one JSON line. The target is the whole directory in 60 s on a
2-core machine; peak RSS adds this process's peak to the largest worker's peak, since the
workers run at the same time as the parent.

    .venv/bin/python benchmarks/generate_speed.py [COMPANIES]
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from enrichment_pipeline.registers.generator import DUMP_JSON, generate

TARGET_WALL_S = 60.0


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux; RUSAGE_CHILDREN reports the largest terminated child.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def run(companies: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="generate-speed-") as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        generate(out, companies, seed=1, changes=companies // 100)
        wall_s = time.perf_counter() - started
        dump_mb = (out / DUMP_JSON).stat().st_size / 1e6
    return {
        "benchmark": "generate_speed",
        "companies": companies,
        "wall_s": round(wall_s, 2),
        "units_per_s": round(companies / wall_s),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "dump_json_gz_mb": round(dump_mb, 1),
        "target_wall_s": TARGET_WALL_S,
        "meets_target": wall_s <= TARGET_WALL_S,
        # Wall time on a shared machine depends on its neighbours; CPU time and load tell them apart.
        "cpu_s": round(_cpu_s(), 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str]) -> int:
    companies = int(argv[1]) if len(argv) > 1 else 1_000_000
    print(json.dumps(run(companies)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

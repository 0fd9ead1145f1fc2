"""Test helpers: generated data (cached per session) and hand-made dumps in the register's layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any


def jackson(value: Any, indent: int = 0) -> str:
    """Serialise like the register's dump (Jackson's DefaultPrettyPrinter): `"key" : value`."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{ }"
        items = ",\n".join(f"{pad}  {json.dumps(k, ensure_ascii=False)} : {jackson(v, indent + 1)}" for k, v in value.items())
        return "{\n" + items + f"\n{pad}}}"
    if isinstance(value, list):
        return "[ ]" if not value else "[ " + ", ".join(jackson(v, indent) for v in value) + " ]"
    return json.dumps(value, ensure_ascii=False)


def write_json_dump(path: Path, records: list[Any], *, raw_records: list[str] | None = None) -> Path:
    """A gzip JSON dump; `raw_records` are inserted verbatim (for deliberately broken units)."""
    parts = [jackson(r) for r in records] + list(raw_records or [])
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("[ " + ", ".join(parts) + " ]")
    return path


def read_dump(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)

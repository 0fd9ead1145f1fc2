"""Write a synthetic register data directory (docs/data-layout.md) for N organisations.

Work is cut into chunks of `CHUNK_UNITS` units. Each chunk draws its units from its own
seeded random streams, so any process can render any chunk and the output does not depend
on how many processes ran. A worker renders every file's share of a chunk and deflates it
as a raw deflate block ending in a sync flush; the parent concatenates the blocks in chunk
order under one gzip header and trailer (combining the CRCs), which is how pigz makes one
valid single-member gzip file from parallel work. Addresses and home pages need a global
"seen" set, so workers hand their lines back and the parent deduplicates and deflates them.

    enrichment-pipeline generate --companies N --out DIR [--seed S] [--changes M]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import hashlib
import json
import logging
import multiprocessing
import os
import random
import struct
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from enrichment_pipeline.registers import orgnr as orgnr_rules
from enrichment_pipeline.registers import synthetic as syn

logger = logging.getLogger(__name__)

FORMAT = 1
CHUNK_UNITS = 2_000
# Sub-unit serials reserved per chunk; a chunk never writes more sub-units than this.
SUBUNITS_PER_CHUNK = 4_000
FIRST_UPDATE_ID = 25_000_000
COMPRESS_LEVEL = 1
# The dump's Last-Modified: rebuilt nightly around 04:30 Oslo time (CEST = UTC+2 in August).
DUMP_BUILT_UTC = dt.datetime(2026, 8, 5, 2, 30, 0, tzinfo=dt.timezone.utc)
# Cumulative shares of the feed's change types: Ny 30%, Endring 55%, Sletting 10%, Fjernet 5%.
CHANGE_MIX: tuple[tuple[str, float], ...] = (
    ("Ny", 0.30), ("Endring", 0.85), ("Sletting", 0.95), ("Fjernet", 1.0)
)

DUMP_JSON = "enheter.json.gz"
DUMP_CSV = "enheter.csv.gz"
UNITS = "units.jsonl.gz"
ROLES = "roles.jsonl.gz"
ACCOUNTS = "accounts.jsonl.gz"
SUBUNITS = "subunits.jsonl.gz"
ADDRESSES = "addresses.jsonl.gz"
HOMEPAGES = "homepages.jsonl.gz"
UPDATES = "updates.jsonl.gz"
CHUNKED_FILES = (DUMP_JSON, DUMP_CSV, UNITS, ROLES, ACCOUNTS, SUBUNITS)
CHUNK_COUNTS = ("active", "deleted", "removed", "subunits", "roles", "accounts", "filings")

Progress = Callable[[int, int], None]
# (endringstype, day index, "HH:MM:SS") in feed order
Edit = tuple[str, int, str]


# -- gzip from parallel deflate blocks ----------------------------------------------------------
def deflate_block(data: bytes) -> tuple[bytes, int, int]:
    """Raw deflate of `data` ending on a byte boundary (sync flush), with its CRC-32 and length."""
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(data), len(data)


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _zero_operators() -> list[list[int]]:
    """GF(2) operators that advance a CRC-32 over 2^k zero bytes, k = 0..47 (zlib's crc32_combine)."""
    one_bit = [0xEDB88320] + [1 << n for n in range(31)]
    op = one_bit
    for _ in range(3):  # 1 -> 2 -> 4 -> 8 bits
        op = [_gf2_times(op, op[n]) for n in range(32)]
    ops = [op]
    for _ in range(47):
        op = [_gf2_times(op, op[n]) for n in range(32)]
        ops.append(op)
    return ops


_ZERO_OPS: list[list[int]] = []


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A+B from crc(A), crc(B) and len(B); the standard library does not expose it."""
    if not _ZERO_OPS:
        _ZERO_OPS.extend(_zero_operators())
    k = 0
    while length2:
        if length2 & 1:
            crc1 = _gf2_times(_ZERO_OPS[k], crc1)
        length2 >>= 1
        k += 1
    return crc1 ^ crc2


class GzipAssembler:
    """One single-member gzip file written from ordered raw deflate blocks (mtime 0, no name)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tmp = path.with_name(path.name + ".part")
        self._out: BinaryIO = self._tmp.open("wb")
        # magic, deflate, no flags, mtime 0, "fastest" extra flags, OS unknown
        self._out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff")
        self._crc = 0
        self._length = 0
        self._compressor: Any = None

    def add_block(self, block: bytes, crc: int, length: int) -> None:
        self._flush_text()
        self._out.write(block)
        self._crc = crc32_combine(self._crc, crc, length)
        self._length += length

    def add_text(self, data: bytes) -> None:
        """Compress here, in this process (for the small files the parent deduplicates)."""
        if self._compressor is None:
            self._compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
        self._out.write(self._compressor.compress(data))
        self._crc = zlib.crc32(data, self._crc)
        self._length += len(data)

    def _flush_text(self) -> None:
        if self._compressor is not None:
            self._out.write(self._compressor.flush(zlib.Z_SYNC_FLUSH))
            self._compressor = None

    def abort(self) -> None:
        self._out.close()
        self._tmp.unlink(missing_ok=True)

    def close(self) -> tuple[int, int]:
        """Finish the stream, move the file in place; returns (crc32, uncompressed length)."""
        self._flush_text()
        self._out.write(zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
        self._out.write(struct.pack("<II", self._crc, self._length & 0xFFFFFFFF))
        self._out.close()
        os.replace(self._tmp, self.path)
        return self._crc, self._length


# -- the change feed ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Update:
    oppdateringsid: int
    dato: str
    index: int  # unit index: < companies for dump units, companies + j for the j-th new unit
    endringstype: str


@dataclass
class ChangePlan:
    updates: list[Update]
    edits: dict[int, list[Edit]]
    new_days: list[int]  # registration day of each new unit, in order
    first_update_id: int


def _pick_target(rng: random.Random, companies: int, touched: list[int], gone: set[int]) -> int | None:
    """A unit that still exists: sometimes one already in the feed, so units recur."""
    for _ in range(30):
        if touched and rng.random() < 0.15:
            index = touched[int(rng.random() * len(touched))]
        else:
            index = int(rng.random() * companies)
        if index not in gone:
            return index
    return None


def plan_changes(seed: int, companies: int, changes: int) -> ChangePlan:
    """The feed after the dump: ids only increase, dates in `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`."""
    rng = random.Random(f"{seed}/changes")
    first_id = FIRST_UPDATE_ID + int(rng.random() * 500_000)
    update_id = first_id
    clock_ms = (DUMP_BUILT_UTC.hour * 3600 + DUMP_BUILT_UTC.minute * 60 + 60) * 1000
    updates: list[Update] = []
    edits: dict[int, list[Edit]] = {}
    new_days: list[int] = []
    touched: list[int] = []
    gone: set[int] = set()
    for _ in range(changes):
        roll = rng.random()
        kind = next(name for name, upper in CHANGE_MIX if roll < upper)
        target = None if kind == "Ny" else _pick_target(rng, companies, touched, gone)
        if target is None:
            kind = "Ny"
        day = syn.DUMP_DAY + clock_ms // 86_400_000
        if kind == "Ny":
            target = companies + len(new_days)
            new_days.append(day)
        assert target is not None
        ms = clock_ms % 86_400_000
        clock = f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}"
        dato = f"{syn.DAYS[day]}T{clock}.{ms % 1000:03d}Z"
        updates.append(Update(update_id, dato, target, kind))
        edits.setdefault(target, []).append((kind, day, clock))
        touched.append(target)
        if kind in ("Sletting", "Fjernet"):
            gone.add(target)
        update_id += 1 if rng.random() < 0.7 else 2 + int(rng.random() * 4)
        clock_ms += 150 + int(rng.random() * 3000)
    return ChangePlan(updates, edits, new_days, first_id)


# -- one chunk, in a worker ---------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkTask:
    seed: int
    kind: str  # "base": dump units; "new": units the feed adds after the dump
    number: int
    start: int  # first unit index of the chunk (new units count from `companies`)
    count: int
    companies: int
    base_chunks: int
    edits: dict[int, list[Edit]]
    new_days: tuple[int, ...] = ()


@dataclass
class ChunkResult:
    kind: str
    number: int
    count: int
    blocks: dict[str, tuple[bytes, int, int]]
    addresses: list[tuple[bytes, str]]
    homepages: list[tuple[str, str]]
    counts: dict[str, int] = field(default_factory=dict)


_SPACES: dict[int, syn.OrgnrSpace] = {}


def orgnr_space(seed: int) -> syn.OrgnrSpace:
    if seed not in _SPACES:
        _SPACES[seed] = syn.OrgnrSpace(seed, orgnr_rules.check_digit)
    return _SPACES[seed]


def unit_serial(index: int, companies: int, base_chunks: int) -> int:
    """Serial of a unit: dump units first, then the sub-unit blocks, then units new in the feed."""
    if index < companies:
        return index
    return companies + base_chunks * SUBUNITS_PER_CHUNK + (index - companies)


def _sub_serials(task: ChunkTask, space: syn.OrgnrSpace) -> Callable[[], str | None]:
    next_serial = task.companies + task.number * SUBUNITS_PER_CHUNK
    limit = next_serial + (SUBUNITS_PER_CHUNK if task.kind == "base" else 0)

    def take() -> str | None:
        nonlocal next_serial
        if next_serial >= limit:
            return None
        next_serial += 1
        return space.number(next_serial - 1)

    return take


class _ChunkWriter:
    """Renders one chunk's units into each file's lines."""

    def __init__(self, task: ChunkTask) -> None:
        self.task = task
        self.space = orgnr_space(task.seed)
        stream = f"{task.seed}/{task.kind}/{task.number}"
        self.units = syn.UnitFactory(random.Random(stream + "/units"))
        self.side = syn.SideFactory(
            random.Random(stream + "/side"), _sub_serials(task, self.space), self.units
        )
        self.editor = syn.UnitFactory(random.Random(stream + "/edits"))
        self.dump: list[str] = []
        self.csv: list[str] = [syn.CSV_HEADER] if task.kind == "base" and task.number == 0 else []
        self.api: list[str] = []
        self.roles: list[str] = []
        self.accounts: list[str] = []
        self.subunits: list[str] = []
        self.addresses: list[tuple[bytes, str]] = []
        self.homepages: list[tuple[str, str]] = []
        self.counts = dict.fromkeys(CHUNK_COUNTS, 0)

    def run(self) -> ChunkResult:
        task = self.task
        for offset in range(task.count):
            index = task.start + offset
            serial = unit_serial(index, task.companies, task.base_chunks)
            new_day = task.new_days[offset] if task.kind == "new" else None
            self._unit(index, self.space.number(serial), new_day)
        self.counts["filings"] = self.side.filings
        return ChunkResult(
            task.kind, task.number, task.count, self._blocks(), self.addresses, self.homepages, self.counts
        )

    def _unit(self, index: int, orgnr: str, new_day: int | None) -> None:
        u = self.units.unit(orgnr, new_day)
        if new_day is None:  # units new in the feed came after the dump was built
            self.dump.append(syn.render_dump(u))
            self.csv.append(syn.render_csv(u))
        edits = self.task.edits.get(index)
        if edits:
            self._edited(u, edits)
        else:
            self.counts["active"] += 1
            # pieces, not one formatted string: the join later copies each record once
            record = syn.render_api(u)
            self.api += ('{"organisasjonsnummer":"', orgnr, '","state":"active","record":', record, "}\n")
        self._side_records(u)

    def _edited(self, u: syn.Unit, edits: list[Edit]) -> None:
        """units.jsonl after the feed: the last edit decides the state."""
        orgnr = u["orgnr"]
        final = dict(u)
        for kind, day, clock in edits:
            if kind == "Endring":
                syn.apply_endring(final, self.editor, day, clock)
        kind, day, _ = edits[-1]
        if kind == "Sletting":
            state, record = "deleted", syn.render_deleted(orgnr, syn.DAYS[day])
        elif kind == "Fjernet":
            state, record = "removed", syn.render_removed(orgnr, syn.DAYS[day])
        else:
            state = "active"
            record = syn.render_api(final)
            if "forr" in final and final["forr"] is not u.get("forr"):
                self._address(final["forr"])
        self.counts[state] += 1
        self.api.append('{"organisasjonsnummer":"%s","state":"%s","record":%s}\n' % (orgnr, state, record))

    def _side_records(self, u: syn.Unit) -> None:
        side = self.side
        orgnr = u["orgnr"]
        roles = side.roles(u)
        if roles is not None:
            self.counts["roles"] += 1
            self.roles += ('{"organisasjonsnummer":"', orgnr, '","body":', roles, "}\n")
        accounts = side.accounts(u)
        if accounts is not None:
            self.counts["accounts"] += 1
            self.accounts += ('{"organisasjonsnummer":"', orgnr, '","body":', accounts, "}\n")
        if u["nsub"]:
            lines = [line for _, line in side.subunits(u)]
            self.counts["subunits"] += len(lines)
            self.subunits += lines
        if "forr" in u:
            self._address(u["forr"])
        site = side.homepage(u)
        if site is not None:
            self.homepages.append(site)

    def _address(self, address: syn.Address) -> None:
        entry = self.side.address(address)
        if entry is not None:
            self.addresses.append(entry)

    def _blocks(self) -> dict[str, tuple[bytes, int, int]]:
        task = self.task
        texts = {
            UNITS: "".join(self.api),
            ROLES: "".join(self.roles),
            ACCOUNTS: "".join(self.accounts),
            SUBUNITS: "".join(self.subunits),
        }
        if task.kind == "base":
            head = "[ " if task.number == 0 else ", "
            tail = " ]" if task.number == task.base_chunks - 1 else ""
            texts[DUMP_JSON] = head + ", ".join(self.dump) + tail
            texts[DUMP_CSV] = "".join(self.csv)
        return {name: deflate_block(text.encode()) for name, text in texts.items() if text}


def render_chunk(task: ChunkTask) -> ChunkResult:
    return _ChunkWriter(task).run()


# -- the parent ---------------------------------------------------------------------------------
def _tasks(seed: int, companies: int, plan: ChangePlan) -> Iterator[ChunkTask]:
    base_chunks = -(-companies // CHUNK_UNITS)
    by_chunk: dict[tuple[str, int], dict[int, list[Edit]]] = {}
    for index, edits in plan.edits.items():
        if index < companies:
            key = ("base", index // CHUNK_UNITS)
        else:
            key = ("new", (index - companies) // CHUNK_UNITS)
        by_chunk.setdefault(key, {})[index] = edits
    for number in range(base_chunks):
        start = number * CHUNK_UNITS
        count = min(CHUNK_UNITS, companies - start)
        edits = by_chunk.get(("base", number), {})
        yield ChunkTask(seed, "base", number, start, count, companies, base_chunks, edits)
    for number in range(-(-len(plan.new_days) // CHUNK_UNITS)):
        first = number * CHUNK_UNITS
        days = tuple(plan.new_days[first : first + CHUNK_UNITS])
        edits = by_chunk.get(("new", number), {})
        start = companies + first
        yield ChunkTask(seed, "new", number, start, len(days), companies, base_chunks, edits, days)


def _keep_freed_memory() -> None:
    """Pool initializer: let glibc reuse freed memory instead of handing it back to the kernel.

    Each chunk builds and drops strings of several MB; by default glibc maps and unmaps them,
    and the page faults cost about a tenth of the run. Harmless where glibc is absent.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        logger.debug("no glibc mallopt here; workers keep the default allocator settings")


def _run_chunks(tasks: list[ChunkTask], workers: int) -> Iterator[ChunkResult]:
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield render_chunk(task)
        return
    # fork starts workers in milliseconds; workers only render and compress, they touch no
    # locks another thread of the parent could hold.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(processes=workers, initializer=_keep_freed_memory) as pool:
        yield from pool.imap(render_chunk, tasks, chunksize=1)


def _java_date(moment: dt.datetime) -> str:
    """Java Date.toString() in Oslo summer time, the form brreg puts in Last-Modified."""
    local = moment + dt.timedelta(hours=2)
    return local.strftime("%a %b %d %H:%M:%S CEST %Y")


def _write_updates(path: Path, plan: ChangePlan, companies: int, space: syn.OrgnrSpace) -> None:
    base_chunks = -(-companies // CHUNK_UNITS)
    out = GzipAssembler(path)
    template = '{"oppdateringsid":%d,"dato":"%s","organisasjonsnummer":"%s","endringstype":"%s"}\n'
    for first in range(0, len(plan.updates), 10_000):
        lines = []
        for u in plan.updates[first : first + 10_000]:
            number = space.number(unit_serial(u.index, companies, base_chunks))
            lines.append(template % (u.oppdateringsid, u.dato, number, u.endringstype))
        out.add_text("".join(lines).encode())
    out.close()


class _Deduplicated:
    """A parent-side JSONL file keeping only the first line per key."""

    def __init__(self, path: Path) -> None:
        self.out = GzipAssembler(path)
        self.seen: set[Any] = set()

    def add(self, entries: Iterable[tuple[Any, str]]) -> None:
        fresh = []
        for key, line in entries:
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(line)
        if fresh:
            self.out.add_text("".join(fresh).encode())

    def close(self) -> int:
        self.out.close()
        return len(self.seen)

    def abort(self) -> None:
        self.out.abort()


class _Output:
    """Every file of the directory that chunk results feed, in chunk order."""

    def __init__(self, out_dir: Path) -> None:
        self.files = {name: GzipAssembler(out_dir / name) for name in CHUNKED_FILES}
        self.addresses = _Deduplicated(out_dir / ADDRESSES)
        self.homepages = _Deduplicated(out_dir / HOMEPAGES)
        self.counts = dict.fromkeys(CHUNK_COUNTS, 0)

    def add(self, result: ChunkResult) -> None:
        for name, (block, crc, length) in result.blocks.items():
            self.files[name].add_block(block, crc, length)
        self.addresses.add(result.addresses)
        self.homepages.add(result.homepages)
        for key, value in result.counts.items():
            self.counts[key] += value

    def close(self) -> tuple[int, int]:
        """Close every file; returns the dump's CRC-32 and length, which the ETag derives from."""
        dump = self.files[DUMP_JSON].close()
        for name in CHUNKED_FILES[1:]:
            self.files[name].close()
        self.counts["addresses"] = self.addresses.close()
        self.counts["homepages"] = self.homepages.close()
        return dump

    def abort(self) -> None:
        """Drop the half-written files: a reader must never take a `.part` file for data."""
        for out in (*self.files.values(), self.addresses, self.homepages):
            out.abort()


def _check_size(companies: int, plan: ChangePlan) -> None:
    base_chunks = -(-companies // CHUNK_UNITS)
    needed = companies + base_chunks * SUBUNITS_PER_CHUNK + len(plan.new_days)
    if companies < 1 or needed > syn.OrgnrSpace.SLOTS:
        raise ValueError(f"companies must be between 1 and about 2.9 million, got {companies}")


def generate(
    out_dir: Path,
    companies: int,
    seed: int = 1,
    changes: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the data directory of docs/data-layout.md into `out_dir`; returns the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_changes(seed, companies, changes)
    _check_size(companies, plan)
    tasks = list(_tasks(seed, companies, plan))
    total_units = companies + len(plan.new_days)
    output = _Output(out_dir)
    try:
        done = 0
        for result in _run_chunks(tasks, min(os.cpu_count() or 1, len(tasks))):
            output.add(result)
            done += result.count
            if progress is not None:
                progress(done, total_units)
    except BaseException:
        output.abort()
        raise
    dump_crc, dump_length = output.close()
    if changes:
        _write_updates(out_dir / UPDATES, plan, companies, orgnr_space(seed))
    else:
        (out_dir / UPDATES).unlink(missing_ok=True)  # a feed left by an earlier run would lie
    counts = {"units": companies, "new": len(plan.new_days), **output.counts, "updates": len(plan.updates)}
    dump_digest = f"{dump_crc:08x}:{dump_length}"
    manifest = _manifest(seed, companies, changes, plan.first_update_id, counts, dump_digest)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("generated %d units and %d sub-units into %s", companies, counts["subunits"], out_dir)
    return manifest


def _manifest(
    seed: int, companies: int, changes: int, first_update_id: int, counts: dict[str, int], dump_digest: str
) -> dict[str, Any]:
    # The ETag changes whenever the dump's bytes do, as a content hash would.
    etag = hashlib.blake2b(f"{seed}:{companies}:{dump_digest}".encode(), digest_size=16).hexdigest()
    return {
        "format": FORMAT,
        "seed": seed,
        "companies": companies,
        "changes": changes,
        "etag": etag,
        "last_modified": _java_date(DUMP_BUILT_UTC + dt.timedelta(seconds=seed % 60)),
        "first_update_id": first_update_id,
        "counts": counts,
    }


# -- command line -------------------------------------------------------------------------------
def _progress_printer(stream: Any) -> Progress:
    last = [0]

    def report(done: int, total: int) -> None:
        decile = done * 10 // max(total, 1)
        if decile > last[0]:
            last[0] = decile
            print(f"generate: {done}/{total} units ({decile * 10}%)", file=stream, flush=True)

    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="enrichment-pipeline generate", description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, required=True, help="main units in the dump")
    parser.add_argument("--out", type=Path, required=True, help="data directory to write")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same bytes)")
    parser.add_argument("--changes", type=int, default=0, help="change-feed updates after the dump")
    args = parser.parse_args(argv)
    if args.companies < 1 or args.changes < 0:
        parser.error("--companies must be at least 1 and --changes not negative")
    started = time.perf_counter()
    progress = _progress_printer(sys.stderr) if args.companies >= 50_000 else None
    manifest = generate(args.out, args.companies, seed=args.seed, changes=args.changes, progress=progress)
    c = manifest["counts"]
    print(
        f"generated {c['units']} units, {c['subunits']} sub-units, {c['roles']} role sets, "
        f"{c['accounts']} accounts, {c['addresses']} addresses, {c['homepages']} home pages, "
        f"{c['updates']} updates into {args.out} in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

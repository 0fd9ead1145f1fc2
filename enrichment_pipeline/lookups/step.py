"""One lookup step over one or more company batches, shared by every lookup asset.

    read the batch's stale companies (one short query, connection released)
    -> fetch every company concurrently (no database connection held)
    -> write all outcomes (one short transaction)
    -> fail only when the batches' error share passes the threshold, so an outage is never marked done

The per-company work is the lookup module's own function; this module only runs it.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from enrichment_pipeline.db.resource import PoolStats, PostgresResource
from enrichment_pipeline.registers.clients import outcome_of
from enrichment_pipeline.registers.http import Fetched, map_concurrent
from enrichment_pipeline.sources import FRESHNESS, OUTCOMES, error_threshold
from enrichment_pipeline.store import enrichments as store
from enrichment_pipeline.store.enrichments import Company, Outcome
from enrichment_pipeline.store.status import error_shares

Lookup = Callable[[Company], Outcome]
SkipRule = Callable[[Company], "str | None"]


@dataclass(frozen=True)
class Skipping:
    """A lookup with a rule for the companies it never asks about (the reason, or None to ask).

    Called directly it applies the rule itself; a step applies it before the thread pool, so a
    batch where most companies are skipped (most forms file no accounts, most units have no home
    page) does not pay a thread hand-off for each of them.
    """

    fetch: Lookup
    skip_reason: SkipRule

    def __call__(self, company: Company) -> Outcome:
        reason = self.skip_reason(company)
        return Outcome(company.orgnr, "skipped", error=reason) if reason else self.fetch(company)


class LookupConfig(dg.Config):
    error_threshold: float | None = None
    """Fail the materialization when more than this share of looked-up companies end in error
    (default: 5% for the registers, 25% for home pages; see sources.ERROR_THRESHOLDS)."""
    refresh_all: bool = False
    """Look up every company of the batches, not only those whose answer is stale (see FRESHNESS)."""


@dataclass
class StepReport:
    companies: int
    outcomes: Counter[str]
    latencies_s: list[float]
    wall_s: float
    fetch_s: float
    requests: int
    db_hold_s: float
    pool: PoolStats
    errors: list[str] = field(default_factory=list)
    fresh: int = 0
    """Companies of the batches not looked up because their stored answer is still fresh."""

    @property
    def looked_up(self) -> int:
        return self.companies - self.outcomes["skipped"]

    @property
    def error_share(self) -> float:
        return self.outcomes["error"] / self.looked_up if self.looked_up else 0.0

    def metadata(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s)
        meta: dict[str, Any] = {
            "companies": self.companies + self.fresh,
            "stale": self.companies,
            "kept_fresh": self.fresh,
            **{f"outcome_{o}": self.outcomes[o] for o in OUTCOMES},
            "error_share_this_run": round(self.error_share, 4),
            "latency_p50_ms": round(statistics.median(lat) * 1000, 1) if lat else 0.0,
            "latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))] * 1000, 1) if lat else 0.0,
            "requests_per_s": round(self.requests / self.fetch_s, 1) if self.fetch_s > 0 else 0.0,
            "companies_per_s": round(self.companies / self.wall_s, 1) if self.wall_s > 0 else 0.0,
            "db_hold_s": round(self.db_hold_s, 4),
            "db_hold_share": round(self.db_hold_s / self.wall_s, 4) if self.wall_s > 0 else 0.0,
            "wall_s": round(self.wall_s, 3),
        }
        meta.update(self.pool.as_metadata())
        return meta


def batches_of(context: dg.AssetExecutionContext) -> list[int]:
    from enrichment_pipeline.defs.companies.partitions import batch_number

    return sorted(batch_number(key) for key in context.partition_keys)


def run_lookup(
    postgres: PostgresResource, *, source: str, batches: Sequence[int], lookup: Lookup, max_in_flight: int,
    holder: object = None, run_id: str | None = None, refresh_all: bool = True,
) -> StepReport:
    """Read, release, fetch, write. Skipped companies (deleted units) never reach `lookup`;
    unless `refresh_all`, companies whose answer is still fresh are not read at all."""
    started = time.monotonic()
    pool_before = postgres.begin_window()
    read = store.read_batch(postgres, batches, holder, source=source, refresh_all=refresh_all,
                            max_age_days=FRESHNESS[source].max_age_days if source in FRESHNESS else 0)
    companies = read.companies
    fetch_started = time.monotonic()
    skipped, to_ask = _skipped(companies, lookup)
    outcomes = skipped + map_concurrent(_guarded(lookup), to_ask, max_in_flight)
    fetch_s = time.monotonic() - fetch_started
    store.write_outcomes(postgres, source, outcomes, run_id, holder)
    pool = postgres.stats().minus(pool_before)
    return StepReport(
        companies=len(companies),
        outcomes=Counter(o.outcome for o in outcomes),
        latencies_s=[o.latency_s for o in outcomes if o.outcome != "skipped"],
        wall_s=time.monotonic() - started,
        fetch_s=fetch_s,
        requests=sum(o.attempts for o in outcomes),
        db_hold_s=pool.held_ms / 1000,
        pool=pool,
        errors=[f"{o.orgnr}: {o.error}" for o in outcomes if o.outcome == "error"][:5],
        fresh=read.fresh,
    )


def _skipped(companies: Sequence[Company], lookup: Lookup) -> tuple[list[Outcome], list[Company]]:
    """Deleted units, and those the lookup's own rule skips, are settled here, without a request."""
    rule = lookup.skip_reason if isinstance(lookup, Skipping) else None
    skipped: list[Outcome] = []
    to_ask: list[Company] = []
    for company in companies:
        reason = "deleted from the register" if company.deleted else rule(company) if rule else None
        if reason:
            skipped.append(Outcome(company.orgnr, "skipped", error=reason))
        else:
            to_ask.append(company)
    return skipped, to_ask


def _guarded(lookup: Lookup) -> Lookup:
    """An unexpected exception is one company's error, not the batch's."""

    def guarded(company: Company) -> Outcome:
        try:
            return lookup(company)
        except Exception as exc:  # a parsing bug on one odd answer must not lose the whole batch
            return Outcome(company.orgnr, "error", error=f"{type(exc).__name__}: {exc}"[:500])

    return guarded


def materialize_lookup(
    context: dg.AssetExecutionContext, postgres: PostgresResource, config: LookupConfig, *, source: str,
    lookup: Lookup, max_in_flight: int,
) -> dg.MaterializeResult:
    """The body every lookup asset shares: run the step, report it, fail on too many errors."""
    batches = batches_of(context)
    report = run_lookup(postgres, source=source, batches=batches, lookup=lookup, max_in_flight=max_in_flight,
                        holder=context, run_id=context.run.run_id, refresh_all=config.refresh_all)
    # The batches' share as stored now, not this run's alone: a run that only retries a few
    # companies whose sites are broken for good is not an outage, while an outage still leaves
    # most of the batches in error (and every company in error is looked up again next time).
    shares = error_shares(postgres, source, batches, context)
    in_error, looked_up = sum(e for e, _ in shares.values()), sum(n for _, n in shares.values())
    share = in_error / looked_up if looked_up else 0.0
    metadata = {**report.metadata(), "error_share": round(share, 4), "companies_in_error": in_error}
    context.log.info(
        f"{source}: {report.companies} companies looked up in {len(batches)} batch(es), {report.fresh} still fresh: "
        + ", ".join(f"{o} {report.outcomes[o]}" for o in OUTCOMES if report.outcomes[o])
        + f"; {metadata['companies_per_s']} companies/s, db held {metadata['db_hold_share']:.1%} of the step"
    )
    threshold = config.error_threshold if config.error_threshold is not None else error_threshold(source)
    if share > threshold:
        raise dg.Failure(
            description=(f"{source}: {in_error} of {looked_up} companies of these batches are in error "
                         f"({share:.1%} > error_threshold {threshold:.0%}; {report.outcomes['error']} failed in this run); "
                         f"their results are kept and they are retried next time. First: {'; '.join(report.errors[:3])}"),
            metadata=metadata,
            # A register outage is not cured by retrying in-process within seconds; the batch stays
            # unmaterialized and its failed companies are retried by the next run.
            allow_retries=False,
        )
    return dg.MaterializeResult(metadata=metadata)


def from_fetched(company: Company, fetched: Fetched, parse: Callable[[Any], Any]) -> Outcome:
    """Map one register answer to the stored outcome; `parse` turns an ok body into our data."""
    outcome = outcome_of(fetched)
    error = None
    data: Any = None
    if outcome == "error":
        error = fetched.error or f"unexpected HTTP {fetched.status}"
    elif outcome == "ok":
        data = parse(fetched.body)
    elif outcome == "deleted":
        data = {"slettedato": fetched.body.get("slettedato")}
    return Outcome(company.orgnr, outcome, fetched.status, error, data, fetched.attempts, fetched.latency_s)

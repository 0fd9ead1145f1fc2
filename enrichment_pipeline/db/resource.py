"""The one Postgres resource: it owns every connection the project opens.

A psycopg_pool `ConnectionPool` per process with a full lifecycle: a floor of `pool_min` (0 by
default, so an idle pool empties), a small `pool_max`, a bounded acquire wait and waiter queue,
idle release, a maximum lifetime, a health check on checkout, server-side statement and
idle-in-transaction timeouts, leak warnings that name the holder, and statistics for metadata.

The safe path is the easy one::

    with postgres.transaction(context) as conn:
        conn.execute("insert ...", params)

Every connection carries `application_name = enrichment:<asset or command>:<partition>:<run>`
(at most 63 bytes) so `pg_stat_activity` shows who holds it.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import dagster as dg
import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests
from pydantic import PrivateAttr

from enrichment_pipeline.db.urls import DatabaseUrl, scrub_secrets
from enrichment_pipeline.errors import ConfigurationError, DatabaseUnavailable, PoolExhausted

log = logging.getLogger(__name__)

APP_PREFIX = "enrichment"
MAX_APPLICATION_NAME_BYTES = 63
ENV_PREFIX = "ENRICHMENT_PG_"
# The shortest health check on checkout, even when the acquire deadline is nearer: one round trip.
_MIN_CHECK_S = 0.05
# How often a starting run asks again for a server that is down: quickly at first, then every 2 s.
_PREFLIGHT_FIRST_DELAY_S = 0.25
_PREFLIGHT_MAX_DELAY_S = 2.0


@dataclass(frozen=True, kw_only=True)
class PoolSettings:
    """Resolved pool settings; every unit is in the name."""

    pool_min: int = 0
    pool_max: int = 2
    acquire_timeout_s: float = 30.0
    idle_timeout_s: float = 30.0
    max_lifetime_s: float = 1800.0
    max_waiting: int = 16
    connect_timeout_s: float = 10.0
    """Longest wait for the server to answer a new connection (libpq counts at least 2 s) or the
    health check on checkout (an empty query)."""
    statement_timeout_ms: int = 120_000
    idle_in_transaction_timeout_ms: int = 60_000
    leak_threshold_s: float = 120.0
    monitor_interval_s: float = 5.0
    warn_utilisation: float = 0.4
    error_utilisation: float = 0.6

    def __post_init__(self) -> None:
        if self.pool_max < 1 or self.pool_min < 0 or self.pool_min > self.pool_max:
            raise ConfigurationError(
                f"pool sizes need 0 <= pool_min <= pool_max and pool_max >= 1 (got pool_min={self.pool_min}, pool_max={self.pool_max})"
            )
        for name in ("acquire_timeout_s", "idle_timeout_s", "max_lifetime_s", "connect_timeout_s", "leak_threshold_s"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive (got {getattr(self, name)})")

    @property
    def idle_drain_bound_s(self) -> float:
        """How long an idle pool may take to shrink to pool_min.

        psycopg_pool closes at most one connection per `max_idle` period, and only after a
        whole period without use, so n connections above the floor go within (n + 1) periods.
        """
        return (self.pool_max - self.pool_min + 1) * self.idle_timeout_s


def application_name(holder: str, partition: str | None = None, run_id: str | None = None) -> str:
    """`enrichment:<holder>:<partition>:<run id prefix>`, cut to PostgreSQL's 63 bytes."""
    name = f"{APP_PREFIX}:{holder}:{partition or ''}:{(run_id or '')[:8]}"
    encoded = name.encode("utf-8")[:MAX_APPLICATION_NAME_BYTES]
    return encoded.decode("utf-8", errors="ignore")


def holder_name(context: Any) -> str:
    """The application_name for whatever a Dagster context is running right now."""
    run = getattr(context, "run", None)
    run_id = getattr(run, "run_id", None)
    partition: str | None = None
    if getattr(context, "has_partition_key_range", False):
        key_range = context.partition_key_range
        partition = key_range.start if key_range.start == key_range.end else f"{key_range.start}..{key_range.end}"
    elif getattr(context, "has_partition_key", False):
        partition = context.partition_key
    holder = "run"
    try:
        holder = context.asset_key.to_user_string()
    except Exception:  # an op context with no asset, or several assets
        holder = getattr(getattr(context, "op_def", None), "name", None) or holder
    return application_name(holder, partition, run_id)


@dataclass
class PoolStats:
    acquisitions: int = 0
    waits: int = 0
    wait_ms: float = 0.0
    timeouts: int = 0
    queue_full: int = 0
    in_use: int = 0
    peak_in_use: int = 0
    held_ms: float = 0.0
    max_held_ms: float = 0.0
    connections_opened: int = 0
    connections_closed: int = 0
    connections_lost: int = 0
    leak_warnings: int = 0
    utilisation_warnings: int = 0
    utilisation_errors: int = 0

    def as_metadata(self, prefix: str = "pool_") -> dict[str, float | int]:
        return {f"{prefix}{key}": round(value, 3) if isinstance(value, float) else value for key, value in asdict(self).items()}

    def minus(self, earlier: "PoolStats") -> "PoolStats":
        """Counters accumulated since `earlier`; gauges (in_use, peaks) as they are now."""
        gauges = {"in_use", "peak_in_use", "max_held_ms"}
        return PoolStats(**{
            f.name: getattr(self, f.name) if f.name in gauges else getattr(self, f.name) - getattr(earlier, f.name)
            for f in fields(self)
        })


@dataclass
class _Checkout:
    holder: str
    since: float
    where: str
    warned: bool = False


class _Health:
    """A pool's health check on checkout, bounded in time, and the last problem its connections had.

    psycopg_pool's own check (an empty query) waits as long as the server takes to answer: when the
    server or anything in between stops answering while the kernel still acknowledges the bytes, a
    step would hang on checkout. This one gives up after connect_timeout_s, or when the caller's
    acquire deadline passes if that comes first, so a silent server ends as a pool timeout.
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.deadline = threading.local()  # set by getconn: the checking thread's acquire deadline
        self.last_problem: tuple[float, str] | None = None

    def note(self, problem: str) -> None:
        self.last_problem = (time.monotonic(), problem)

    def problem_since(self, since: float) -> str | None:
        last = self.last_problem
        return last[1] if last is not None and last[0] >= since else None

    def check(self, conn: psycopg.Connection) -> None:
        now = time.monotonic()
        until = min(now + self.limit_s, max(getattr(self.deadline, "at", now + self.limit_s), now + _MIN_CHECK_S))
        try:
            _empty_query(conn.pgconn, until, now)
        except Exception as exc:
            self.note(_one_line(exc))
            # A query may still be pending on it: it can never be used again. (conn.close() would
            # hand it back to the pool, close_returns=True; the pool discards a closed one.)
            conn.pgconn.finish()
            raise

    def connection_class(self) -> type[psycopg.Connection]:
        """psycopg's Connection, noting why a new connection could not be made."""
        return type("PooledConnection", (_PooledConnection,), {"health": self})


class _PooledConnection(psycopg.Connection):  # type: ignore[type-arg]
    health: _Health

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:  # noqa: ANN401 - psycopg's own signature
        try:
            return super().connect(conninfo, **kwargs)
        except psycopg.Error as exc:
            cls.health.note(_one_line(exc))
            raise


def _empty_query(pgconn: pq.abc.PGconn, until: float, started: float) -> None:
    """Send an empty query and read its answer with libpq's non-blocking calls, giving up at `until`."""
    if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
        raise psycopg.OperationalError("the pooled connection is not idle")
    pgconn.send_query(b"")
    while pgconn.flush():
        _wait_socket(pgconn.socket, select.POLLOUT, until, started)
    while True:
        pgconn.consume_input()
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                return
            if result.status == pq.ExecStatus.FATAL_ERROR:
                message = result.error_message.decode("utf-8", errors="replace").strip()
                raise psycopg.OperationalError(message or "the health check failed")
        _wait_socket(pgconn.socket, select.POLLIN, until, started)


def _wait_socket(fileno: int, events: int, until: float, started: float) -> None:
    poller = select.poll()
    poller.register(fileno, events | select.POLLERR | select.POLLHUP)
    remaining = until - time.monotonic()
    if remaining <= 0 or not poller.poll(remaining * 1000):
        raise psycopg.OperationalError(f"the server did not answer the health check within {until - started:.3g} s")


def _one_line(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


@dataclass
class _PoolState:
    """The live pool and its bookkeeping; one per opened resource."""

    settings: PoolSettings
    url: DatabaseUrl
    label: str
    pool: ConnectionPool
    health: _Health
    stats: PoolStats = field(default_factory=PoolStats)
    checkouts: dict[int, _Checkout] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    logger: Any = None
    peak_since_sample: int = 0


def _caller() -> str:
    """file:line in function of the first frame outside this module and contextlib."""
    for frame in reversed(traceback.extract_stack(limit=12)[:-1]):
        if not frame.filename.endswith(("db/resource.py", "contextlib.py")):
            return f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
    return "unknown"


class _TrackedPool(ConnectionPool):
    """A ConnectionPool that tells its owner about every checkout and return.

    Overriding getconn/putconn catches returns through `conn.close()` too (close_returns=True),
    which is how SQLAlchemy hands connections back when it is plugged in with NullPool.
    """

    owner: "_PoolState"

    def getconn(self, timeout: float | None = None) -> psycopg.Connection:
        state = self.owner
        started = time.monotonic()
        state.health.deadline.at = started + (self.timeout if timeout is None else timeout)
        try:
            conn = super().getconn(timeout=timeout)
        except PoolTimeout:
            state.stats.timeouts += 1
            raise
        except TooManyRequests:
            state.stats.queue_full += 1
            raise
        waited_ms = (time.monotonic() - started) * 1000
        with state.lock:
            stats = state.stats
            stats.acquisitions += 1
            if waited_ms > 1.0:
                stats.waits += 1
                stats.wait_ms += waited_ms
            stats.in_use += 1
            stats.peak_in_use = max(stats.peak_in_use, stats.in_use)
            state.peak_since_sample = max(state.peak_since_sample, stats.in_use)
            state.checkouts[id(conn)] = _Checkout(holder=state.label, since=time.monotonic(), where=_caller())
        return conn

    def putconn(self, conn: psycopg.Connection) -> None:
        state = self.owner
        with state.lock:
            checkout = state.checkouts.pop(id(conn), None)
            if checkout is not None:
                held_ms = (time.monotonic() - checkout.since) * 1000
                state.stats.in_use -= 1
                state.stats.held_ms += held_ms
                state.stats.max_held_ms = max(state.stats.max_held_ms, held_ms)
        super().putconn(conn)


class PostgresResource(dg.ConfigurableResource):
    """Every connection to the project's PostgreSQL goes through here.

    Settings left unset come from the environment (`ENRICHMENT_PG_<NAME>`, e.g.
    `ENRICHMENT_PG_POOL_MAX=4`) or the defaults of `PoolSettings`. The URL comes from
    `database_url`, else `DATABASE_URL`, else the embedded server.
    """

    database_url: str | None = None
    database: str | None = None
    pool_min: int | None = None
    pool_max: int | None = None
    acquire_timeout_s: float | None = None
    idle_timeout_s: float | None = None
    max_lifetime_s: float | None = None
    max_waiting: int | None = None
    connect_timeout_s: float | None = None
    statement_timeout_ms: int | None = None
    idle_in_transaction_timeout_ms: int | None = None
    leak_threshold_s: float | None = None
    monitor_interval_s: float | None = None
    warn_utilisation: float | None = None
    error_utilisation: float | None = None

    _state: _PoolState | None = PrivateAttr(default=None)

    def __repr_args__(self) -> Any:  # a URL with a password must never reach a log or a traceback
        for name, value in super().__repr_args__():
            yield name, (scrub_secrets(value) if name == "database_url" and isinstance(value, str) else value)

    # -- configuration -------------------------------------------------------------------
    def settings(self) -> PoolSettings:
        """Config value, else environment, else default, for every pool setting."""
        resolved: dict[str, Any] = {}
        for f in fields(PoolSettings):
            value = getattr(self, f.name)
            if value is None:
                raw = os.environ.get(ENV_PREFIX + f.name.upper())
                if raw is not None:
                    try:
                        value = type(f.default)(raw)
                    except ValueError:
                        raise ConfigurationError(f"{ENV_PREFIX + f.name.upper()}={raw!r} is not a valid {type(f.default).__name__}") from None
            if value is not None:
                resolved[f.name] = value
        return PoolSettings(**resolved)

    def resolved_url(self) -> DatabaseUrl:
        from enrichment_pipeline.db.connect import project_database_url

        url = project_database_url(self.database_url)
        return url.with_database(self.database) if self.database else url

    # -- lifecycle -----------------------------------------------------------------------
    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        run = context.run
        # A run (or sensor tick) that starts while the server restarts waits for it instead of failing
        # at resource initialization, which no RetryPolicy retries.
        self.open(application_name(run.job_name if run else "run", None, run.run_id if run else None), logger=context.log,
                  wait_for_server=True)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def open(self, label: str, logger: Any = None, *, wait_for_server: bool = False) -> "PostgresResource":
        """Open the pool (a no-op when already open). Outside Dagster, use `opened()`.

        With `wait_for_server`, a server that is down or starting up is waited for up to
        acquire_timeout_s; commands fail at once instead, with one clear line.
        """
        if self._state is not None:
            return self
        settings = self.settings()
        url = self.resolved_url()
        self._preflight(url, settings, label, settings.acquire_timeout_s if wait_for_server else 0.0, logger or log)
        health = _Health(settings.connect_timeout_s)
        pool = _TrackedPool(
            kwargs={
                **url.conninfo_kwargs(),
                "application_name": label,
                "connect_timeout": max(1, int(settings.connect_timeout_s)),
                "options": (
                    f"-c statement_timeout={settings.statement_timeout_ms}"
                    f" -c idle_in_transaction_session_timeout={settings.idle_in_transaction_timeout_ms}"
                ),
                "autocommit": True,
            },
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            timeout=settings.acquire_timeout_s,
            max_waiting=settings.max_waiting,
            max_idle=settings.idle_timeout_s,
            max_lifetime=settings.max_lifetime_s,
            reconnect_timeout=max(settings.acquire_timeout_s, 5.0),
            check=health.check,
            connection_class=health.connection_class(),
            name=label,
            close_returns=True,
            open=False,
            num_workers=2,
        )
        state = _PoolState(settings=settings, url=url, label=label, pool=pool, health=health, logger=logger or log)
        pool.owner = state
        pool.open(wait=settings.pool_min > 0, timeout=settings.acquire_timeout_s)
        self._state = state
        threading.Thread(target=self._watch, args=(state,), name=f"pool-watch:{label}", daemon=True).start()
        return self

    def close(self) -> None:
        state, self._state = self._state, None
        if state is None:
            return
        state.stop.set()
        state.pool.close(timeout=5.0)

    @contextmanager
    def opened(self, label: str) -> Iterator["PostgresResource"]:
        """Open for a command outside Dagster: `with PostgresResource().opened("db-upgrade") as pg:`."""
        self.open(label if label.startswith(APP_PREFIX + ":") else application_name(label))
        try:
            yield self
        finally:
            self.close()

    def _preflight(self, url: DatabaseUrl, settings: PoolSettings, label: str, wait_s: float, logger: Any) -> None:
        """One direct connection first, so a wrong host or password is a clear error, not a pool timeout.

        A server that refuses, does not answer or is starting or shutting down is tried again for
        `wait_s`; a wrong password or a missing database is not something waiting cures.
        """
        deadline = time.monotonic() + wait_s
        delay_s = _PREFLIGHT_FIRST_DELAY_S
        while True:
            try:
                conn = psycopg.connect(
                    **url.conninfo_kwargs(), application_name=label, connect_timeout=max(1, int(settings.connect_timeout_s))
                )
            except psycopg.OperationalError as exc:
                if not _may_come_back(exc) or time.monotonic() + delay_s > deadline:
                    raise DatabaseUnavailable(_explain_connect_error(exc, url)) from None
                if delay_s == _PREFLIGHT_FIRST_DELAY_S:
                    logger.warning(f"PostgreSQL at {url.where()} gives no connection ({scrub_secrets(_one_line(exc), url.password)}); "
                                   f"waiting up to {wait_s:g} s (acquire_timeout_s) for it")
                time.sleep(delay_s)
                delay_s = min(2 * delay_s, _PREFLIGHT_MAX_DELAY_S)
                continue
            conn.close()
            return

    # -- connections ---------------------------------------------------------------------
    @property
    def _live(self) -> _PoolState:
        if self._state is None:
            raise RuntimeError("the Postgres resource is not open: use it inside a Dagster run or `with resource.opened(label):`")
        return self._state

    @contextmanager
    def connection(self, holder: Any = None) -> Iterator[psycopg.Connection]:
        """A pooled connection in autocommit mode; a transaction left open is rolled back on return."""
        state = self._live
        name = _holder_label(holder, state.label)
        asked = time.monotonic()
        try:
            conn = state.pool.getconn()
        except PoolTimeout:
            raise PoolExhausted(self._exhausted_message(state, "gave no connection within", asked)) from None
        except TooManyRequests:
            raise PoolExhausted(self._exhausted_message(
                state, f"has {state.settings.max_waiting} waiters (max_waiting) and refused one more; timeout")) from None
        try:
            with state.lock:
                checkout = state.checkouts.get(id(conn))
                if checkout is not None:
                    checkout.holder = name
                    checkout.where = _caller()
            if conn.info.parameter_status("application_name") != name:
                conn.execute("SELECT set_config('application_name', %s, false)", [name])
            yield conn
        finally:
            state.pool.putconn(conn)

    @contextmanager
    def transaction(self, holder: Any = None) -> Iterator[psycopg.Connection]:
        """A pooled connection inside one transaction: committed on success, rolled back on error."""
        with self.connection(holder) as conn, conn.transaction():
            yield conn

    @contextmanager
    def sqlalchemy_connection(self, holder: Any = None) -> Iterator[Any]:
        """A SQLAlchemy connection over the same pool (Alembic needs one)."""
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        state = self._live
        name = _holder_label(holder, state.label)
        engine = sa.create_engine("postgresql+psycopg://", poolclass=NullPool, creator=state.pool.getconn)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT set_config('application_name', %(n)s, false)", {"n": name})
                yield connection
        finally:
            engine.dispose()

    # -- observation ---------------------------------------------------------------------
    def stats(self) -> PoolStats:
        state = self._live
        pool_stats = state.pool.get_stats()
        with state.lock:
            snapshot = PoolStats(**asdict(state.stats))
        snapshot.connections_opened = pool_stats.get("connections_num", 0)
        snapshot.connections_lost = pool_stats.get("connections_lost", 0)
        snapshot.connections_closed = max(0, snapshot.connections_opened - pool_stats.get("pool_size", 0))
        return snapshot

    def begin_window(self) -> PoolStats:
        """Start a measurement window (one step): the peak restarts from what is in use now."""
        state = self._live
        with state.lock:
            state.stats.peak_in_use = state.stats.in_use
            state.stats.max_held_ms = 0.0
        return self.stats()

    def pool_size(self) -> int:
        """Connections this process holds open right now (in use or idle)."""
        return int(self._live.pool.get_stats().get("pool_size", 0))

    def _exhausted_message(self, state: _PoolState, what: str, timed_out_since: float | None = None) -> str:
        s = state.settings
        message = (
            f"pool {state.label!r} {what} {s.acquire_timeout_s:g} s (acquire_timeout_s): "
            f"{state.stats.in_use} of pool_max={s.pool_max} in use"
        )
        if timed_out_since is not None and state.stats.in_use < s.pool_max:
            # Not every connection is held by a caller: the server did not give a working one in time.
            problem = state.health.problem_since(timed_out_since)
            message += f", and the server at {state.url.where()} gave no working connection in time"
            if problem:
                message += f" ({scrub_secrets(problem, state.url.password)})"
        return message

    def _watch(self, state: _PoolState) -> None:
        """Leak warnings and the utilisation monitor, on one daemon thread per pool."""
        s = state.settings
        tick = max(0.05, min(1.0, s.leak_threshold_s / 4, s.monitor_interval_s))
        next_sample = time.monotonic() + s.monitor_interval_s
        level = 0
        while not state.stop.wait(tick):
            now = time.monotonic()
            with state.lock:
                overdue = [c for c in state.checkouts.values() if not c.warned and now - c.since > s.leak_threshold_s]
                for checkout in overdue:
                    checkout.warned = True
                    state.stats.leak_warnings += 1
            for checkout in overdue:
                state.logger.warning(
                    f"connection held for {now - checkout.since:.1f} s (leak_threshold_s={s.leak_threshold_s:g}) "
                    f"by {checkout.holder}, acquired at {checkout.where}"
                )
            if now >= next_sample:
                next_sample = now + s.monitor_interval_s
                level = self._sample(state, level)

    def _sample(self, state: _PoolState, level: int) -> int:
        """Log once when utilisation crosses the warning or error share; returns the new level."""
        s = state.settings
        with state.lock:
            peak, state.peak_since_sample = state.peak_since_sample, state.stats.in_use
        share = peak / s.pool_max
        new_level = 2 if share > s.error_utilisation else 1 if share > s.warn_utilisation else 0
        if new_level > level:
            message = (f"pool {state.label!r} at {peak}/{s.pool_max} connections ({share:.0%}), "
                       f"above the {'error' if new_level == 2 else 'warning'} share "
                       f"{s.error_utilisation if new_level == 2 else s.warn_utilisation:.0%}")
            if new_level == 2:
                state.stats.utilisation_errors += 1
            else:
                state.stats.utilisation_warnings += 1
            # In a run this goes to the event log, where operators look; a one-off CLI pool of two
            # is always "half used", so there it is only a debug line.
            if state.logger is log:
                log.debug(message)
            elif new_level == 2:
                state.logger.error(message)
            else:
                state.logger.warning(message)
        return new_level


def _holder_label(holder: Any, default: str) -> str:
    if holder is None:
        return default
    if isinstance(holder, str):
        return holder if holder.startswith(APP_PREFIX + ":") else application_name(holder)
    return holder_name(holder)


# libpq gives connection failures no SQLSTATE, only text: these say the server may be back soon
# (refused, silent, starting up, shutting down, in recovery); a wrong password or database does not.
_MAY_COME_BACK = ("connection refused", "timeout expired", "the database system is", "server closed the connection",
                  "terminating connection due to administrator command")


def _may_come_back(exc: psycopg.OperationalError) -> bool:
    text = str(exc).lower()
    return (exc.sqlstate or "").startswith("57P") or any(marker in text for marker in _MAY_COME_BACK)


def _explain_connect_error(exc: psycopg.OperationalError, url: DatabaseUrl) -> str:
    """One line that names the server (never the password) and what to check."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    raw = scrub_secrets(text, url.password)
    lowered = raw.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        hint = f"check the user name and password for {url.user!r}"
    elif "does not exist" in lowered and "database" in lowered:
        hint = f"create database {url.database!r} or fix the URL"
    elif "too many clients" in lowered or "remaining connection slots" in lowered:
        hint = "the server is out of connection slots; run `enrichment-pipeline connections`"
    elif "timeout" in lowered or "timed out" in lowered:
        hint = "check that the host is reachable and the port is right (connect timed out)"
    else:
        hint = "check that the server is running and the host and port are right"
    return f"cannot connect to PostgreSQL at {url.where()} as {url.user}: {raw.removeprefix('connection failed: ')}; {hint}"

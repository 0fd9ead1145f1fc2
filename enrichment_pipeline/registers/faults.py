"""Deterministic fault injection for the local registers service.

Every decision is a pure function of (seed, method, request key, n) where n counts the
requests already seen for that key. Hashing instead of a shared random generator keeps a
run reproducible however the server's threads happen to be scheduled: two clients that
each walk their own paths see the same statuses on every run with the same seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal["none", "reset", "timeout", "500", "429", "malformed"]

_RATE_FIELDS: tuple[str, ...] = ("rate_reset", "rate_timeout", "rate_500", "rate_429", "rate_malformed")


@dataclass(frozen=True)
class Faults:
    """What the service does wrong, and how often. All rates are probabilities per request."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_429: float = 0.0
    retry_after_s: int = 1
    rate_500: float = 0.0
    burst: int = 0
    rate_timeout: float = 0.0
    timeout_sleep_s: float = 30.0
    rate_malformed: float = 0.0
    rate_reset: float = 0.0
    seed: int = 0
    faults_on_dump: bool = False

    def __post_init__(self) -> None:
        for name in _RATE_FIELDS:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {rate}")
        # One uniform draw picks at most one fault, so the rates share the unit interval.
        if sum(getattr(self, name) for name in _RATE_FIELDS) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")
        for name in ("latency_ms", "jitter_ms", "timeout_sleep_s", "retry_after_s", "burst"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def is_quiet(self) -> bool:
        """True when no request is delayed or broken, so decisions can skip hashing."""
        rates = sum(getattr(self, name) for name in _RATE_FIELDS)
        return rates == 0 and self.latency_ms == 0 and self.jitter_ms == 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Faults:
        """Faults from a JSON object; unknown keys are an error so typos do not pass silently."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        return cls(**{name: _coerce(known[name], value) for name, value in values.items()})


def _coerce(field: dataclasses.Field[Any], value: Any) -> Any:
    """JSON has no int/float distinction worth trusting; convert to the field's type."""
    kind = type(field.default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{field.name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field.name} must be a number")
    return kind(value)


@dataclass(frozen=True)
class Decision:
    kind: FaultKind
    delay_s: float


NO_FAULT = Decision(kind="none", delay_s=0.0)


def draw(seed: int, salt: str, method: str, key: str, n: int) -> float:
    """A uniform number in [0, 1) fixed by its arguments."""
    text = f"{seed}\x00{salt}\x00{method}\x00{key}\x00{n}".encode()
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def pick_kind(faults: Faults, u: float) -> FaultKind:
    """Map one uniform draw onto the fault kinds, each taking a slice as wide as its rate."""
    edge = 0.0
    for name, kind in zip(_RATE_FIELDS, ("reset", "timeout", "500", "429", "malformed")):
        edge += getattr(faults, name)
        if u < edge:
            return kind  # type: ignore[return-value]
    return "none"


class FaultPlan:
    """Thread-safe per-key request counters plus the 500-burst state."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._faults = faults or Faults()
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], int] = {}
        self._burst_until: dict[tuple[str, str], int] = {}

    @property
    def faults(self) -> Faults:
        return self._faults

    def replace(self, faults: Faults) -> None:
        # Counters survive so a run can change settings midway; reset() starts afresh.
        with self._lock:
            self._faults = faults

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
            self._burst_until.clear()

    def decide(self, method: str, key: str) -> Decision:
        """The fault for the next request with this method and key."""
        slot = (method, key)
        with self._lock:
            n = self._seen.get(slot, 0)
            self._seen[slot] = n + 1
            faults = self._faults
            if faults.is_quiet:
                return NO_FAULT
            if n <= self._burst_until.get(slot, -1):
                kind: FaultKind = "500"
            else:
                kind = pick_kind(faults, draw(faults.seed, "kind", method, key, n))
                if kind == "500" and faults.burst > 0:
                    self._burst_until[slot] = n + faults.burst
        jitter = faults.jitter_ms * draw(faults.seed, "jitter", method, key, n)
        return Decision(kind=kind, delay_s=(faults.latency_ms + jitter) / 1000.0)

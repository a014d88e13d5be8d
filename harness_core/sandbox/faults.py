"""Fault injection for the sandbox: what a flaky network and a busy API do to a client.

API faults (`--faults "429:0.2,500:0.1,latency:200ms,reset:0.05"`):
  429:P      answer 429 with Retry-After before doing anything (nothing happened)
  500:P      do the work, then answer 500 (the write happened; the answer is lost)
  reset:P    do the work, then drop the connection mid-answer (ambiguous for the client)
  latency:D  wait D (e.g. 200ms, 1.5s) before answering every request
Callback faults (`--callback-faults "late:0.2,dup:0.1,reorder:0.1"`):
  late:P     deliver that callback after a delay; dup:P deliver it twice; reorder:P swap it with
             the next one. Probabilities are per request/callback, drawn from a seeded RNG.
"""
from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field

API_KINDS = ("429", "500", "reset", "latency")
CALLBACK_KINDS = ("late", "dup", "reorder")


class FaultSpecError(ValueError):
    """A --faults / --callback-faults string that cannot be read."""


def parse_duration(text: str) -> float:
    """`200ms` -> 0.2, `1.5s` -> 1.5, `2` -> 2.0 (seconds)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", text)
    if not m:
        raise FaultSpecError(f"{text!r} is not a duration (use e.g. 200ms or 1.5s)")
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value


def parse_faults(spec: str | None, kinds=API_KINDS) -> dict[str, float]:
    """`"429:0.2,latency:200ms"` -> {"429": 0.2, "latency": 0.2}. Probabilities must be in [0, 1]."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        name, sep, value = part.partition(":")
        if not sep or name not in kinds:
            raise FaultSpecError(f"{part!r}: expected one of {', '.join(k + ':...' for k in kinds)}")
        if name == "latency":
            out[name] = parse_duration(value)
        else:
            try:
                out[name] = float(value)
            except ValueError:
                raise FaultSpecError(f"{part!r}: {value!r} is not a probability") from None
            if not 0.0 <= out[name] <= 1.0:
                raise FaultSpecError(f"{part!r}: a probability is between 0 and 1")
    return out


@dataclass
class FaultPlan:
    """Seeded draws for API and callback faults, and a count of what was injected."""

    api: dict[str, float] = field(default_factory=dict)
    callbacks: dict[str, float] = field(default_factory=dict)
    seed: int = 1
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self, kind: str, table: dict[str, float]) -> bool:
        p = table.get(kind, 0.0)
        if p <= 0:
            return False
        with self._lock:
            hit = self._rng.random() < p
            if hit:
                self.injected[kind] = self.injected.get(kind, 0) + 1
        return hit

    def api_fault(self, kind: str) -> bool:
        return self.draw(kind, self.api)

    def callback_fault(self, kind: str) -> bool:
        return self.draw(kind, self.callbacks)

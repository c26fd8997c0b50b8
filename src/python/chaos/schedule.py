"""The storm's faults, drawn from its seed: the same seed, the same schedule.

Each fault starts at `at` seconds into the storm and lasts `hold` seconds:
- `kill`: SIGKILL a service, start it again after `hold` (a crash and a restart);
- `pause`: SIGSTOP a server or a service, SIGCONT after `hold` (a stall: the process
  is there, answers nothing, and wakes up with its connections);
- `restart`: stop nats-server (SIGTERM), start it again after `hold` on the same port
  and store.
Faults do not overlap: each starts after the one before has ended.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SERVICES = ("auth", "tickets", "orders", "expiration", "payments")
SERVERS = ("nats", "mongo")
KINDS = {
    "kill": SERVICES,
    "pause": (*SERVERS, *SERVICES),
    "restart": ("nats",),
}


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    target: str
    hold: float

    def __str__(self) -> str:
        return f"{self.at:6.1f}s {self.kind} {self.target} for {self.hold:.1f}s"


def schedule(
    seed: int, seconds: float, *, gap: tuple[float, float] = (3.0, 12.0), hold: float = 4.0
) -> list[Fault]:
    """Faults for a storm of `seconds`, `gap` seconds apart (drawn), each held up to
    `hold` seconds; the last one ends before the storm does."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    at = round(rng.uniform(*gap), 1)
    while True:
        kind = rng.choice(sorted(KINDS))
        held = round(rng.uniform(0.5, hold), 1)
        if at + held >= seconds:
            return faults
        faults.append(Fault(at, kind, rng.choice(KINDS[kind]), held))
        at = round(at + held + rng.uniform(*gap), 1)

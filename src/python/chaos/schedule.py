"""The storm's faults, drawn from its seed: the same seed, the same schedule.

Each fault starts at `at` seconds into the storm and lasts `hold` seconds:
- `kill`: SIGKILL a service, start it again after `hold` (a crash and a restart);
- `pause`: SIGSTOP a server or a service, SIGCONT after `hold` (a stall: the process
  is there, answers nothing, and wakes up with its connections);
- `restart`: stop nats-server (SIGTERM), start it again after `hold` on the same port
  and store;
- `slow`: a service runs at a fifth of its speed for `hold` (SIGSTOP for 80 ms of every
  100): its listeners fall behind and its answers come late, but nothing stops;
- `provider`: the payment provider `fail`s every call (down: nothing moves) or makes
  each move and loses its answer (`timeout`), for `hold`.
Faults do not overlap: each starts after the one before has ended. Each is written as
`at:kind:target:hold` (`Fault.token`), so a schedule can be replayed (`--faults`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from payments.providers import FAULTS

SERVICES = ("auth", "tickets", "orders", "expiration", "payments")
SERVERS = ("nats", "mongo")
KINDS = {
    "kill": SERVICES,
    "pause": (*SERVERS, *SERVICES),
    "restart": ("nats",),
    "slow": SERVICES,
    "provider": FAULTS,
}


@dataclass(frozen=True, order=True)
class Fault:
    at: float
    kind: str
    target: str
    hold: float

    def __str__(self) -> str:
        return f"{self.at:6.1f}s {self.kind} {self.target} for {self.hold:.1f}s"

    @property
    def token(self) -> str:
        return f"{self.at}:{self.kind}:{self.target}:{self.hold}"

    @classmethod
    def parse(cls, token: str) -> Fault:
        """`12.5:kill:orders:2.0` → the fault; ValueError naming what is wrong."""
        try:
            at, kind, target, hold = token.split(":")
            fault = cls(float(at), kind, target, float(hold))
        except ValueError:
            raise ValueError(f"{token!r}: a fault is at:kind:target:hold") from None
        if fault.target not in KINDS.get(kind, ()):
            raise ValueError(f"{token!r}: {kind} {target} is not a fault the storm makes")
        return fault


def parse_faults(text: str) -> list[Fault]:
    """A schedule written as `Fault.token`s, separated by commas (`--faults`)."""
    return sorted(Fault.parse(token.strip()) for token in text.split(",") if token.strip())


def write_faults(faults: list[Fault]) -> str:
    return ",".join(fault.token for fault in faults)


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

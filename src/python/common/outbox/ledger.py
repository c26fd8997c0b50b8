"""What this process has recorded and not yet seen acknowledged: the numbers of its
events in flight and of those whose publish failed, and from them its *mark* (every
event of it numbered below the mark is on the stream). In memory only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from common.mongo import Document

MAX_REMEMBERED = 10_000
"""Failed publishes a process remembers one by one; past this (a long NATS outage) it
rescans its collections instead, so memory stays bounded."""


@dataclass(frozen=True)
class Unsent:
    """An event of this process whose publish failed: where it is, to send it again."""

    collection: str
    doc_id: Any
    n: int
    at: datetime


def _earliest(
    rescan: tuple[int, datetime] | None, other: tuple[int, datetime]
) -> tuple[int, datetime]:
    """The earlier start (number and time) of two rescans."""
    if rescan is None:
        return other
    return min(rescan[0], other[0]), min(rescan[1], other[1])


class Ledger:
    def __init__(self) -> None:
        self.next = 0  # the number of this process's next event
        self.in_flight: dict[int, datetime] = {}  # written or being written, not acked
        self.failed: dict[str, Unsent] = {}  # by event id, for the relay
        # past MAX_REMEMBERED: rescan from (number, when recorded) of the oldest forgotten
        self.rescan: tuple[int, datetime] | None = None
        self.scanning: tuple[int, datetime] | None = None  # a rescan under way: the same

    def number(self, at: datetime) -> int:
        """A number for a new event recorded `at`; in flight from now on."""
        n, self.next = self.next, self.next + 1
        self.in_flight[n] = at
        return n

    def refused(self, entry: Document) -> None:
        """Its write was refused: nothing landed."""
        self.in_flight.pop(entry["n"], None)

    def fail(self, collection: str, doc_id: Any, entry: Document) -> None:
        """Its publish failed (or its write may have landed): the relay sends it."""
        self.in_flight.pop(entry["n"], None)
        if entry["id"] in self.failed:
            return
        if len(self.failed) < MAX_REMEMBERED:
            self.failed[entry["id"]] = Unsent(collection, doc_id, entry["n"], entry["at"])
        else:
            self.rescan = _earliest(self.rescan, (entry["n"], entry["at"]))

    def sent(self, entry: Document, ours: bool) -> None:
        self.failed.pop(entry["id"], None)
        if ours:
            self.in_flight.pop(entry["n"], None)

    def start_rescan(self) -> int | None:
        """The rescan to run now (from this number), if any; what overflows while it
        runs starts the next one."""
        if self.rescan is None:
            return None
        self.scanning, self.rescan = self.rescan, None
        return self.scanning[0]

    def end_rescan(self, done: bool) -> None:
        if not done and self.scanning is not None:
            self.rescan = _earliest(self.rescan, self.scanning)
        self.scanning = None

    def mark(self) -> int:
        """Every event of this writer numbered below this is on the stream."""
        rescans = [r[0] for r in (self.rescan, self.scanning) if r is not None]
        return min([*self.in_flight, *(u.n for u in self.failed.values()), *rescans, self.next])

    def unsent(self) -> int:
        """Events that failed to publish and wait for the relay (past MAX_REMEMBERED:
        at least that many)."""
        return len(self.failed) + (self.rescan is not None) + (self.scanning is not None)

    def oldest_unsent_at(self) -> datetime | None:
        """When the oldest of them was recorded (None: none waits)."""
        rescans = [r[1] for r in (self.rescan, self.scanning) if r is not None]
        return min([*(u.at for u in self.failed.values()), *rescans], default=None)

    def stuck(self, bound: timedelta) -> bool:
        """An event has waited longer than `bound` to be sent."""
        oldest = self.oldest_unsent_at()
        return oldest is not None and oldest < datetime.now(UTC) - bound

    def nothing_unsent(self) -> bool:
        return not self.failed and self.rescan is None

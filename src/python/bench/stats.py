"""Latency/throughput bookkeeping for the benchmark."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass


@dataclass
class Result:
    name: str
    concurrency: int
    ops: int
    throughput: float  # ops/s
    p50_ms: float
    p95_ms: float
    p99_ms: float
    # the database server's work per operation, where measured (`Bench.run_pair`)
    db_cpu_ms: float | None = None
    db_writes: float | None = None
    mode: str = ""  # the per-user write budgets "on" (as ./run) or "off" in the run
    service_cpu_ms: float | None = None  # the service process's CPU per operation

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


OP_TIMEOUT = 120.0
"""Seconds one operation may take before the run fails (a lost answer must not hang the
benchmark; the slowest case, a first page of 10,000 at c=16, takes a few seconds)."""


async def measure(
    name: str, op: Callable[[int], Awaitable[None]], *, ops: int, concurrency: int
) -> Result:
    """Run `op(i)` for i in range(ops) with `concurrency` workers; time each op."""
    latencies: list[float] = []
    counter = iter(range(ops))

    async def worker() -> None:
        for i in counter:
            start = time.perf_counter()
            try:
                async with asyncio.timeout(OP_TIMEOUT):
                    await op(i)
            except TimeoutError:
                raise TimeoutError(f"{name}: operation {i} took over {OP_TIMEOUT:.0f} s") from None
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Result(
        name,
        concurrency,
        ops,
        ops / elapsed,
        *(percentile(latencies, q) * 1000 for q in (0.50, 0.95, 0.99)),
    )


def median_result(results: list[Result]) -> Result:
    """Median of each figure over repetitions."""
    first = results[0]
    return Result(
        first.name,
        first.concurrency,
        first.ops,
        statistics.median(r.throughput for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p95_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        _median_of(r.db_cpu_ms for r in results),
        _median_of(r.db_writes for r in results),
        first.mode,
        _median_of(r.service_cpu_ms for r in results),
    )


def _median_of(values) -> float | None:  # type: ignore[no-untyped-def]
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None

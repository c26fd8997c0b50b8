"""What live state costs: N open ticket pages, each re-reading its ticket once a
second (the web client's `TicketDetailState.watch`), against the tickets service and
its database — their CPU while the pages poll, against idle.

    ./pants run src/python/bench:live_poll -- --tabs 50 --seconds 20

It measures the services' side; the web backend makes the same calls (one HTTP GET a
second per tab) and pushes a state delta over each tab's websocket when something
changed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from bench.main import JWT_KEY, cpu_seconds
from common.auth import SESSION_COOKIE, encode_session, sign_jwt
from harness.servers import MongoServer, NatsServer, ServiceProcess


async def poll(url: str, until: float, latencies: list[float]) -> None:
    async with httpx.AsyncClient() as client:
        while time.monotonic() < until:
            started = time.monotonic()
            response = await client.get(url)
            assert response.status_code == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


async def run(tabs: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with NatsServer(Path(tmp, "nats")) as nats, MongoServer(Path(tmp, "mongo")) as mongo:
            env = {"MONGO_URI": mongo.uri, "NATS_URL": nats.url, "JWT_KEY": JWT_KEY}
            with ServiceProcess("tickets", "tickets.main", env, Path(tmp, "tickets")) as tickets:
                token = sign_jwt("bench-seller", "s@bench", JWT_KEY)
                cookies = {SESSION_COOKIE: encode_session(token)}
                async with httpx.AsyncClient(cookies=cookies) as seller:
                    body = {"title": "Live", "price": 10}
                    created = (await seller.post(f"{tickets.url}/api/tickets", json=body)).json()
                pids = {"tickets": tickets.process.pid, "mongo": mongo.process.pid}  # type: ignore[union-attr]

                def cpu() -> dict[str, float]:
                    return {name: cpu_seconds(pid) for name, pid in pids.items()}

                before, t0 = cpu(), time.monotonic()
                await asyncio.sleep(seconds)
                idle = {n: (c - before[n]) / (time.monotonic() - t0) for n, c in cpu().items()}
                latencies: list[float] = []
                url = f"{tickets.url}/api/tickets/{created['id']}"
                before, t0 = cpu(), time.monotonic()
                await asyncio.gather(*(poll(url, t0 + seconds, latencies) for _ in range(tabs)))
                wall = time.monotonic() - t0
                busy = {n: (c - before[n]) / wall for n, c in cpu().items()}
                latencies.sort()
                print(
                    f"{tabs} tabs polling once a second for {seconds:.0f} s: {len(latencies) / wall:.1f} GET/s"
                )
                for name in pids:
                    print(
                        f"  {name:8} CPU {busy[name] * 100:5.1f} % of a core (idle {idle[name] * 100:.1f} %)"
                    )
                p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
                print(f"  GET latency p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tabs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.tabs, args.seconds))


if __name__ == "__main__":
    main()

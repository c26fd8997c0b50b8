"""What keeping open tabs costs the web tier: the web process's memory with N tabs,
Redis's memory per tab, and what an event costs with Redis against in the process.

    ./pants run src/python/bench:web_state -- --tabs 100 --events 30

It runs the local stack as `./run` does (`stack.main.Stack`: the five services,
NATS, the MongoDB-wire server, the gateway) twice: with one web process (state in the
process: `./run`'s default) and with two sharing Redis (`./run --web-replicas 2`, the
Kubernetes shape), and opens the tabs in Chromium through the gateway: half on the
landing page signed out, half signed in on "My tickets". An event: a click on a sort
order of the landing page, from its frame on the websocket to the first frame back (the
tab's state taken, the handler's call to tickets, the delta) — the same work in both
shapes but where the state lives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, WebSocket, async_playwright, expect

from bench.main import rss_mib
from harness.servers import free_port
from stack.main import Stack
from ticketing_web.launcher import group_members

CHROMIUM = "/usr/bin/chromium"


def web_rss_mib(stack: Stack) -> dict[str, float]:
    """Each web process's memory: its launcher, server and workers (one group)."""
    return {
        process.name: sum(rss_mib(pid) for pid in group_members(process.process.pid))  # type: ignore[union-attr]
        for process in stack.processes
        if process.name.startswith("web")
    }


def redis_used_mib(stack: Stack) -> tuple[float, int]:
    """Redis's memory in use, and its keys (Debian's redis-cli, beside its server)."""
    [server] = [p for p in stack.processes if p.name == "redis"]
    cli = [shutil.which("redis-cli") or "/usr/bin/redis-cli", "-p", str(server.port)]

    def ask(*command: str) -> str:
        return subprocess.run([*cli, *command], capture_output=True, text=True, check=True).stdout

    used = re.search(r"used_memory:(\d+)", ask("info", "memory"))
    assert used is not None, "redis-cli: no used_memory"
    return int(used.group(1)) / 2**20, int(ask("dbsize"))


async def signed_out_tabs(browser: Browser, url: str, tabs: int) -> list[Page]:
    """`tabs` tabs signed out on the landing page (a user sells 3 tickets first)."""
    seller = await browser.new_context()
    await sign_up(seller, url, "seller")
    for price in (10, 20, 30):
        sold = await seller.request.post(
            url + "/api/tickets", data={"title": "Gig", "price": price}
        )
        assert sold.status == 201, await sold.text()
    anonymous = await browser.new_context()
    pages = []
    for _ in range(tabs):
        page = await anonymous.new_page()
        await page.goto(url + "/")
        await expect(page.locator(".ticket-row").first).to_be_visible()
        pages.append(page)
    return pages


async def signed_in_tabs(browser: Browser, url: str, tabs: int) -> list[Page]:
    """`tabs` tabs of 4 signed-in users on My tickets (each checks its session every
    10 s, as every signed-in tab does)."""
    pages = []
    for user in range(4):
        context = await browser.new_context()
        await sign_up(context, url, f"buyer-{user}")
        for _ in range(tabs // 4):
            page = await context.new_page()
            await page.goto(url + "/my-tickets")
            await expect(page.locator("#nav-signout")).to_be_visible()
            pages.append(page)
    return pages


async def sign_up(context: BrowserContext, url: str, who: str) -> None:
    signed = await context.request.post(
        url + "/api/users/signup",
        data={"email": f"bench-{who}-{time.time_ns()}@b.co", "password": "secret1"},
    )
    assert signed.status == 201, await signed.text()


async def event_seconds(page: Page, url: str, events: int) -> list[float]:
    """Per event: from the frame that sends it on the websocket to the first frame
    back (the backend took the tab's state, ran the handler — a call to tickets — and
    sent the delta), as the browser sees them."""
    sent: list[float] = []
    received: list[float] = []

    def on_socket(socket: WebSocket) -> None:
        socket.on("framesent", lambda _frame: sent.append(time.monotonic()))
        socket.on("framereceived", lambda _frame: received.append(time.monotonic()))

    page.on("websocket", on_socket)
    await page.goto(url + "/")
    await expect(page.locator(".ticket-row").first).to_be_visible()
    seconds = []
    for n in range(events):
        order = ("price_asc", "price_desc")[n % 2]
        await page.wait_for_timeout(300)  # the page's own once-a-second refresh aside
        sent.clear()
        received.clear()
        await page.click(f"#sort-{order}")
        await page.wait_for_url(re.compile(rf"sort={order}$"))
        # shown as chosen (a slow event is measured, not failed)
        await expect(page.locator(f"a#sort-{order}")).to_have_count(0, timeout=60_000)
        first_sent = sent[0]
        seconds.append(min(t for t in received if t >= first_sent) - first_sent)
    return seconds


async def measure(replicas: int, tabs: int, events: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as state:
        stack = Stack(Path(state), free_port(), web_replicas=replicas)
        try:
            stack.start()
            url = f"http://127.0.0.1:{stack.gateway_port}"
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--headless", "--no-sandbox"]
                )
                idle = web_rss_mib(stack)
                redis = [redis_used_mib(stack)] if replicas > 1 else []
                signed_out = await signed_out_tabs(browser, url, tabs // 2)
                await asyncio.sleep(3)
                redis += [redis_used_mib(stack)] if replicas > 1 else []
                signed_in = await signed_in_tabs(browser, url, tabs - tabs // 2)
                await asyncio.sleep(3)
                loaded = web_rss_mib(stack)
                redis += [redis_used_mib(stack)] if replicas > 1 else []
                timed = await event_seconds(signed_out[0], url, events)
                await browser.close()
            opened = len(signed_out) + len(signed_in)
            result: dict[str, object] = {
                "web processes": replicas,
                "tabs": f"{opened} ({len(signed_out)} signed out, {len(signed_in)} signed in)",
                "web RSS idle (MiB)": idle,
                f"web RSS with {opened} tabs (MiB)": loaded,
                "event p50 (ms)": round(statistics.median(timed) * 1000, 1),
                "event p95 (ms)": round(sorted(timed)[int(0.95 * (len(timed) - 1))] * 1000, 1),
            }
            if redis:
                (before, _), (after_out, _), (after_in, keys) = redis
                result["redis used (MiB)"] = round(after_in, 2)
                result["redis keys"] = keys
                result["redis per signed-out tab (KiB)"] = round(
                    (after_out - before) * 1024 / len(signed_out), 1
                )
                result["redis per signed-in tab (KiB)"] = round(
                    (after_in - after_out) * 1024 / len(signed_in), 1
                )
            return result
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", type=int, default=100)
    parser.add_argument("--events", type=int, default=30)
    args = parser.parse_args()
    for replicas in (1, 2):
        result = asyncio.run(measure(replicas, args.tabs, args.events))
        print(json.dumps(result, indent=1), flush=True)


if __name__ == "__main__":
    main()

"""End to end in a real browser: Debian's Chromium driven by Playwright, against the
real web app + auth + tickets + nats-server + the MongoDB-wire server.

Screenshots of each main page go to $E2E_ARTIFACTS_DIR (default: a temp folder).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from common.testing.auth import TEST_JWT_KEY
from harness.servers import ServerProcess, ServiceProcess
from harness.web import WebProcess, copy_app

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Stack:
    web_url: str
    tickets: ServiceProcess


@pytest.fixture(scope="session")
def stack(nats_server, mongo_server, tmp_path_factory) -> Iterator[Stack]:
    common = {"MONGO_URI": mongo_server.uri, "JWT_KEY": TEST_JWT_KEY, "COOKIE_SECURE": "false"}
    auth = ServiceProcess(
        "auth",
        "auth.main",
        {**common, "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"},
        tmp_path_factory.mktemp("auth"),
    )
    tickets = ServiceProcess(
        "tickets",
        "tickets.main",
        {**common, "NATS_URL": nats_server.url},
        tmp_path_factory.mktemp("tickets"),
    )
    started: list[ServerProcess] = []
    try:
        for service in (auth, tickets):
            started.append(service.start())
        app_root = copy_app(tmp_path_factory.mktemp("web-app"))
        web = WebProcess(
            app_root,
            {
                "AUTH_URL": auth.url,
                "TICKETS_URL": tickets.url,
                "COOKIE_SECURE": "false",
            },
        )
        started.append(web.start())
        yield Stack(f"http://127.0.0.1:{web.port}", tickets)
    finally:
        for process in reversed(started):
            process.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's package "
            "(apt-get install chromium) or set CHROMIUM_PATH"
        )
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
        )
        yield context  # type: ignore[misc]
        await context.close()
    shutil.rmtree(profile, ignore_errors=True)


def artifacts_dir() -> Path:
    folder = Path(
        os.environ.get("E2E_ARTIFACTS_DIR") or Path(tempfile.gettempdir()) / "ticketing-e2e"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def snap(page: Page, name: str) -> None:
    await page.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)


async def test_a_seller_signs_up_lists_edits_and_signs_out(stack: Stack, browser) -> None:
    page = await browser.new_page()
    await page.goto(stack.web_url + "/")
    await expect(page.locator("#no-tickets")).to_be_visible()
    await expect(page.locator("#nav-signup")).to_be_visible()
    await expect(page.locator("#nav-signin")).to_be_visible()
    await snap(page, "01-home-empty")

    # sign up → home, header shows the signed-in links
    await page.click("#nav-signup")
    await page.wait_for_url("**/auth/signup")
    await page.fill("#email", "seller@test.com")
    await page.fill("#password", "secret1")
    await snap(page, "02-signup")
    await page.click("#submit")
    await page.wait_for_url(stack.web_url + "/")
    await expect(page.locator("#nav-sell")).to_be_visible()
    await expect(page.locator("#nav-signout")).to_be_visible()
    await expect(page.locator("#nav-signup")).to_have_count(0)

    # a validation error is shown next to the field, in the API's own words
    await page.click("#nav-sell")
    await page.wait_for_url("**/tickets/new")
    await page.fill("#title", "Front row, Friday")
    await page.fill("#price", "-1")
    await page.click("#submit")
    await expect(page.locator("#price-error")).to_have_text("Price must be greater than 0")
    await snap(page, "03-new-ticket-error")

    # create → it appears on the home page
    await page.fill("#price", "25")
    await page.click("#submit")
    await page.wait_for_url(stack.web_url + "/")
    row = page.locator(".ticket-row", has_text="Front row, Friday")
    await expect(row).to_be_visible()
    await expect(row.locator(".ticket-price")).to_have_text("$25.00")
    await snap(page, "04-home-with-ticket")

    # open it → edit the price → the new price is shown
    await row.get_by_role("link", name="View").click()
    await page.wait_for_url("**/tickets/*")
    await expect(page.locator("#ticket-title")).to_have_text("Front row, Friday")
    await expect(page.locator("#ticket-price")).to_contain_text("$25.00")
    await page.fill("#price", "30.5")
    await page.click("#submit")
    await expect(page.locator("#saved")).to_be_visible()
    await expect(page.locator("#ticket-price")).to_contain_text("$30.50")
    await snap(page, "05-ticket-edited")

    # sign out → signed-out header; selling needs a sign-in again
    await page.click("#nav-signout")
    await page.wait_for_url(stack.web_url + "/")
    await expect(page.locator("#nav-signin")).to_be_visible()
    await page.goto(stack.web_url + "/tickets/new")
    await page.wait_for_url("**/auth/signin")
    await snap(page, "06-signin-redirect")
    await page.close()


async def test_another_user_sees_a_ticket_read_only(stack: Stack, browser) -> None:
    page = await browser.new_page()
    await page.goto(stack.web_url + "/auth/signup")
    await page.fill("#email", "buyer@test.com")
    await page.fill("#password", "secret2")
    await page.click("#submit")
    await page.wait_for_url(stack.web_url + "/")
    await page.get_by_role("link", name="View").first.click()
    await page.wait_for_url("**/tickets/*")
    await expect(page.locator("#ticket-title")).to_be_visible()
    await expect(page.locator("#edit-ticket-form")).to_have_count(0)
    await page.goto(stack.web_url + "/auth/signout")
    await page.wait_for_url(stack.web_url + "/")
    await page.close()


async def test_a_service_that_is_down_gives_a_friendly_banner(stack: Stack, browser) -> None:
    stack.tickets.stop()
    try:
        page = await browser.new_page()
        await page.goto(stack.web_url + "/")
        await expect(page.locator("#banner")).to_contain_text("can't reach our servers")
        await expect(page.locator("#nav-signup")).to_be_visible()  # the rest still works
        await expect(page.locator("#no-tickets")).to_have_count(0)  # no untrue "no tickets"
        await snap(page, "07-service-down-banner")
        await page.close()
    finally:
        stack.tickets.restart()

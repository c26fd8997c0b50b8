"""A stateful Stripe-compatible server for the payments tests: localstripe with what the
payments service uses that it lacks (src/python/stripe_server), from its pex (Pants
puts it beside a test that names it in `runtime_package_dependencies`; STRIPE_SERVER_PEX
names another)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx

from harness.servers import ServerProcess, free_port, wait_http_ok

WEBHOOK_SECRET = "whsec_local"  # noqa: S105 -- the same: a local server's
SECRET_KEY = "sk_test_local"  # noqa: S105 -- a test server's: it checks only that there is one


def server_pex() -> str:
    named = os.environ.get("STRIPE_SERVER_PEX")
    if named:
        return named
    here = Path.cwd()
    for candidate in (  # beside a test (Pants puts it there); packaged by ./run
        here / "src.python.stripe_server" / "stripe_server.pex",
        here / "dist" / "src.python.stripe_server" / "stripe_server.pex",
    ):
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(
        "stripe_server.pex not found: `./pants package src/python/stripe_server:stripe_server` "
        "(a test names it in runtime_package_dependencies) or set STRIPE_SERVER_PEX"
    )


class StripeServer(ServerProcess):
    name = "stripe"
    ready_pattern = re.compile(r'"stripe_server": "localstripe", "port": (\d+)')

    def __init__(self, workdir: Path | None = None, port: int = 0) -> None:
        super().__init__(workdir, port)
        # its "Running on" line unbuffered; not our test path (a pex of its own)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("__PEX")}
        self.env["PYTHONUNBUFFERED"] = "1"

    def argv(self) -> list[str]:
        self.requested_port = self.requested_port or free_port()
        return [server_pex(), "--port", str(self.requested_port), "--from-scratch"]

    def start(self, timeout: float = 60.0) -> ServerProcess:
        super().start(timeout)  # it said it is about to listen: ready once it answers
        if not wait_http_ok(f"{self.url}/js.stripe.com/v3/", 20):
            self.stop()
            raise RuntimeError(f"stripe did not answer (log {self.log_path})")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **params: str) -> dict:
        """What the server holds (`/v1/payment_intents`, ...), as Stripe lists it."""
        auth = {"Authorization": f"Bearer {SECRET_KEY}"}
        return httpx.get(f"{self.url}{path}", params=params, headers=auth, timeout=10).json()

    def send_webhooks_to(self, url: str) -> None:
        """Have the server sign its events (`WEBHOOK_SECRET`) and send them to `url`."""
        registered = httpx.post(
            f"{self.url}/_config/webhooks/ticketing", data={"url": url, "secret": WEBHOOK_SECRET}
        )
        registered.raise_for_status()

    def provider_env(self) -> dict[str, str]:
        """The payments service's settings for the Stripe path against this server."""
        return {
            "PAYMENT_PROVIDER": "stripe",
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_API_BASE": self.url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }

    def intents(self) -> list[dict]:
        return list(self.get("/v1/payment_intents", limit="100")["data"])

    def refunds(self, intent_id: str) -> list[dict]:
        every = self.get("/v1/refunds", limit="100")["data"]
        return [refund for refund in every if refund.get("payment_intent") == intent_id]

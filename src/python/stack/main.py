"""Run the whole system on this machine, no cluster: `./run` (see the README).

Starts, in order, each waiting until ready: nats-server (JetStream) and the
MongoDB-wire server (both persisted under the state dir; skipped when NATS_URL /
MONGO_URI point at servers of your own), auth, tickets, the web client, and a Caddy
gateway that routes one address like the Kubernetes ingress. Prints what runs where.
Every process writes its spans to the state dir's `traces/` (`./run traces`).
Ctrl-C / SIGTERM stops everything in reverse order, each by process group. A port in
use, a missing tool or a service that fails names itself and its log, and whatever
was already started is stopped. While it runs, a process that dies is started again
with backoff, as Kubernetes would; a crash loop stops the stack, naming the process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from common.audit import audit
from common.nats_client import NatsClientManager, NatsConnectError
from harness.gateway import CaddyGateway
from harness.redis import RedisServer
from harness.servers import (
    LOOPBACK,
    MongoServer,
    NatsServer,
    ServerProcess,
    ServiceProcess,
    wait_http_ok,
)
from harness.stripe import StripeServer
from harness.web import WebProcess
from stack.state import (
    mongo_uri_file,
    nats_url_file,
    provider_dir,
    state_dir_option,
    stripe_url_file,
    traces_dir,
)
from stack.traces import show_traces
from ticketing_web.launcher import find_app_root


class StackError(Exception):
    pass


class Interrupted(StackError):
    """Ctrl-C / SIGTERM before everything was up."""


# A process that dies is started again, as Kubernetes restarts a crashed pod (a service
# exits 1 on purpose when its NATS connection closes for good): after 1 s, then 2, 4,
# ... up to 30 s while it keeps dying. Five crashes within a minute is a crash loop:
# the stack stops and says so.
RESTART_FIRST_DELAY = 1.0
RESTART_MOST_DELAY = 30.0
CRASH_LOOP_COUNT = 5
CRASH_LOOP_WINDOW = 60.0


@dataclass
class Crashes:
    """One process's recent crashes, and when it may be started again."""

    times: list[float] = field(default_factory=list)
    retry_at: float | None = None

    def record(self, now: float) -> float:
        """Count a crash at `now`; returns the delay before the next start."""
        self.times = [t for t in self.times if now - t < CRASH_LOOP_WINDOW] + [now]
        delay = min(RESTART_FIRST_DELAY * 2 ** (len(self.times) - 1), RESTART_MOST_DELAY)
        self.retry_at = now + delay
        return delay

    @property
    def looping(self) -> bool:
        return len(self.times) >= CRASH_LOOP_COUNT


# The API services `./run` starts, in order (module `<name>.main`), all on NATS.
# Their own settings come from this process's environment (e.g.
# `ORDER_EXPIRATION_SECONDS=10 ./run`; payments: PAYMENT_PROVIDER=test unless set).
SERVICES = ("auth", "tickets", "orders", "expiration", "payments")


WEB_CALLS = ("auth", "tickets", "orders", "payments")  # the services the web backend calls


@dataclass
class Running:
    """A row of the table (an external server has no log of ours)."""

    name: str
    url: str
    log: str


def dev_jwt_key(state_dir: Path) -> str:
    """A random key made on first run and kept in the state dir (dev only; never committed)."""
    path = state_dir / "jwt-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def wait_http(url: str, what: str, log: Path, within: float = 120.0) -> None:
    if not wait_http_ok(url, within):
        raise StackError(f"{what} did not become ready at {url}; see {_shown(log)}")


class Stack:
    def __init__(
        self, state_dir: Path, gateway_port: int, web_replicas: int = 1, stripe_local: bool = False
    ) -> None:
        self.state_dir = state_dir
        self.gateway_port = gateway_port
        self.web_replicas = web_replicas
        self.stripe: StripeServer | None = None  # --stripe-local: payments pays through it
        self.stripe_local = stripe_local
        self.running: list[Running] = []  # the table
        self.processes: list[ServerProcess] = []  # what to stop, registered before starting
        self.crashes: dict[str, Crashes] = {}  # by process name
        self.traces_dir = traces_dir(state_dir)  # every process's spans: ./run traces

    def _started(self, name: str, url: str, process: ServerProcess | None) -> None:
        log = _shown(process.log_path) if process else "(external)"
        self.running.append(Running(name, url, log))

    def _start(self, process: ServerProcess, what: str) -> ServerProcess:
        self.processes.append(process)
        try:
            return process.start()
        except (RuntimeError, FileNotFoundError) as exc:
            raise StackError(f"{what} failed to start; see {process.log_path}\n{exc}") from None

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not port_is_free(self.gateway_port):
            raise StackError(
                f"port {self.gateway_port} (gateway) is already in use: stop what "
                f"uses it, or pick another port with --port"
            )
        nats_url, mongo_uri = self._start_servers()
        nats_url_file(self.state_dir).write_text(nats_url)  # for ./run audit
        mongo_uri_file(self.state_dir).write_text(mongo_uri)  # for ./run reconcile
        stripe_url_file(self.state_dir).unlink(missing_ok=True)
        if self.stripe_local:
            stripe = StripeServer(self.state_dir / "stripe")
            self._start(stripe, "the Stripe server")
            self._started("stripe", stripe.url, stripe)
            stripe_url_file(self.state_dir).write_text(stripe.url)
            self.stripe = stripe
        upstreams = self._start_services(nats_url, mongo_uri)
        upstreams["WEB_UPSTREAM"] = self._start_web()
        self._start_gateway(upstreams)

    def _start_servers(self) -> tuple[str, str]:
        """nats-server and the MongoDB-wire server, unless NATS_URL / MONGO_URI name
        servers of your own."""
        nats_url = os.environ.get("NATS_URL")
        if nats_url:
            self._started("nats", nats_url, None)
        else:
            nats = self._start(NatsServer(self.state_dir / "nats"), "nats-server")
            nats_url = nats.url  # type: ignore[attr-defined]
            self._started("nats", nats_url, nats)
        mongo_uri = os.environ.get("MONGO_URI")
        if mongo_uri:
            self._started("mongo", mongo_uri, None)
        else:
            data = self.state_dir / "mongo" / "data"
            data.mkdir(parents=True, exist_ok=True)
            mongo = self._start(
                MongoServer(self.state_dir / "mongo", storage=data), "MongoDB-wire server"
            )
            mongo_uri = mongo.uri  # type: ignore[attr-defined]
            self._started("mongo", mongo_uri, mongo)
        return nats_url, mongo_uri

    def _start_services(self, nats_url: str, mongo_uri: str) -> dict[str, str]:
        """Each API service, one after another, each ready before the next; returns the
        gateway's upstreams (`<NAME>_UPSTREAM`)."""
        shared = {
            "MONGO_URI": mongo_uri,
            "JWT_KEY": dev_jwt_key(self.state_dir),
            "COOKIE_SECURE": "false",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
            "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),  # JSON: LOG_FORMAT=json ./run
            "TRUSTED_PROXY_HOPS": "1",  # the gateway: it sets X-Forwarded-For
            "TRACES_DIR": str(self.traces_dir),  # ./run traces
        }
        upstreams = {}
        for name in SERVICES:
            env = {**shared, "NATS_URL": nats_url, "NATS_CLIENT_ID": f"{name}-local"}
            if name == "payments":  # the test provider's books outlive a restart
                env["TEST_PROVIDER_DIR"] = str(provider_dir(self.state_dir))
                env.update(self.stripe.provider_env() if self.stripe else {})
            service = ServiceProcess(name, f"{name}.main", env, self.state_dir / name)
            self._start(service, f"the {name} service")
            wait_http(f"{service.url}/readyz", f"the {name} service", service.log_path)
            self._started(name, service.url, service)
            upstreams[f"{name.upper()}_UPSTREAM"] = f"{LOOPBACK}:{service.port}"
            if name == "payments" and self.stripe:  # its signed events, straight to payments
                self.stripe.send_webhooks_to(f"{service.url}/api/payments/webhook")
        return upstreams

    def _start_web(self) -> str:
        """The web client: one process, or `web_replicas` of them sharing their tabs'
        state in Redis (REDIS_URL, else a redis-server of the stack's own); returns the
        gateway's upstreams."""
        env = {
            **{f"{name.upper()}_URL": self._url(name) for name in WEB_CALLS},
            # Reflex's websocket: via the gateway, on the page's own host name (the
            # browser puts it in place of `localhost`), so another machine can too
            "API_URL": f"http://localhost:{self.gateway_port}",
            "TRACES_DIR": str(self.traces_dir),
        }
        if self.web_replicas > 1:
            env["REDIS_URL"] = os.environ.get("REDIS_URL") or self._start_redis()
        print(
            "stack: building and starting the web client (the first time takes a minute or two) ...",
            flush=True,
        )
        upstreams = []
        for number in range(1, self.web_replicas + 1):
            name = "web" if number == 1 else f"web-{number}"  # the first builds, if needed
            web = WebProcess(find_app_root(), env, log_dir=self.state_dir / name, name=name)
            self._start(web, f"the web client ({name})")
            self._started(name, web.url, web)
            upstreams.append(f"{LOOPBACK}:{web.port}")
        return " ".join(upstreams)

    def _start_redis(self) -> str:
        redis = self._start(RedisServer(self.state_dir / "redis"), "redis-server")
        url: str = redis.url  # type: ignore[attr-defined]
        self._started("redis", url, redis)
        return url

    def _start_gateway(self, upstreams: dict[str, str]) -> None:
        gateway = CaddyGateway(self.state_dir / "gateway", self.gateway_port, upstreams)
        self._start(gateway, "the Caddy gateway")
        wait_http(f"{self._gateway_url}/api/users/currentuser", "the gateway", gateway.log_path)
        self._started("gateway", self._gateway_url, gateway)

    @property
    def _gateway_url(self) -> str:
        return f"http://{LOOPBACK}:{self.gateway_port}"

    def _url(self, name: str) -> str:
        return next(r.url for r in self.running if r.name == name)

    def heal(self, now: float | None = None) -> None:
        """Start again each process that died (with backoff: `Crashes`); raise
        StackError on a crash loop. Called every half second while the stack runs."""
        now = time.monotonic() if now is None else now
        for process in self.processes:
            if process.running:
                continue
            crashes = self.crashes.setdefault(process.name, Crashes())
            if crashes.retry_at is None:  # just found dead
                code = process.process.returncode if process.process else None
                delay = crashes.record(now)
                if crashes.looping:
                    raise StackError(
                        f"{process.name} crashed {len(crashes.times)} times within "
                        f"{CRASH_LOOP_WINDOW:.0f} s (a crash loop): giving up; "
                        f"see {_shown(process.log_path)}"
                    )
                print(
                    f"stack: {process.name} exited (code {code}); starting it again in "
                    f"{delay:.0f} s; see {_shown(process.log_path)}",
                    flush=True,
                )
            elif now >= crashes.retry_at:
                crashes.retry_at = None
                try:
                    process.restart()
                except (RuntimeError, FileNotFoundError) as exc:
                    reason = str(exc).splitlines()[0]
                    print(f"stack: {process.name} did not start again: {reason}", flush=True)
                    continue  # found dead again on the next call: counted, backed off
                print(f"stack: {process.name} is running again", flush=True)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def table(self) -> str:
        names = max(len(r.name) for r in self.running)
        width = max(len(r.url) for r in self.running)
        lines = [
            f"Ticketing is up at http://{LOOPBACK}:{self.gateway_port}  (open it in a browser)",
            "",
            f"  {'what':<{names}}  {'where':<{width}}  log",
        ]
        lines += [f"  {r.name:<{names}}  {r.url:<{width}}  {r.log}" for r in self.running]
        lines += [
            "",
            f"  state (data, dev JWT key, logs): {_shown(self.state_dir)}",
            "  traces: ./run traces (latest), ./run traces <id> (one, as a tree)",
            "  money: ./run audit (replays the stream: any order charged and not complete?)",
            "  stop: Ctrl-C (or SIGTERM to this process)",
        ]
        return "\n".join(lines)


def _shown(path: Path) -> str:
    """A path as short as it can be said: relative to here when it is below here."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def traces_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="./run traces", description="Show the traces the local stack recorded."
    )
    parser.add_argument("trace_id", nargs="?", help="a trace id, or its first characters")
    state_dir_option(parser)
    args = parser.parse_args(argv)
    sys.exit(show_traces(traces_dir(args.state_dir), args.trace_id))


def audit_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="./run audit",
        description="Is any money where it should not be? Replays the whole stream and "
        "reports each order charged but not complete, each ticket sold or charged twice, "
        "each authorization not released and each order left open; exit 1 if any.",
    )
    parser.add_argument(
        "--nats-url",
        default=os.environ.get("NATS_URL"),
        help="the stream's NATS (default: $NATS_URL, else the running ./run's)",
    )
    parser.add_argument(
        "--margin", type=float, default=60.0, help="seconds a settlement may take (default 60)"
    )
    state_dir_option(parser)
    args = parser.parse_args(argv)
    url = args.nats_url
    if not url:
        path = nats_url_file(args.state_dir)
        if not path.exists():
            sys.exit("./run audit: no NATS to read: start ./run first, or pass --nats-url")
        url = path.read_text().strip()
    sys.exit(asyncio.run(_audit(url, args.margin)))


async def _audit(url: str, margin: float) -> int:
    client = NatsClientManager()
    try:
        await client.connect(url, "audit")
    except NatsConnectError as exc:
        print(f"./run audit: {exc}", file=sys.stderr)
        return 2
    try:
        report = await audit(client.jetstream, margin=timedelta(seconds=margin))
    finally:
        await client.drain()
    print(report.text())
    return 0 if report.clean else 1


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return int(text)


def main() -> None:
    if sys.argv[1:2] == ["traces"]:
        traces_main(sys.argv[2:])
    if sys.argv[1:2] == ["audit"]:
        audit_main(sys.argv[2:])
    if sys.argv[1:2] == ["reconcile"]:
        from stack.reconcile import reconcile_main  # payments' code: only for this

        reconcile_main(sys.argv[2:])
    parser = argparse.ArgumentParser(
        description="Run the whole Ticketing system locally (`./run traces`: its traces; "
        "`./run audit`: is any money where it should not be? `./run reconcile`: do our "
        "payments and the provider's books agree?)."
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GATEWAY_PORT", "8080")),
        help="the one local address's port (default 8080)",
    )
    parser.add_argument(
        "--web-replicas",
        type=_at_least_one,
        default=os.environ.get("WEB_REPLICAS", "1"),
        help="web client processes behind the gateway (default 1); 2 or more share their "
        "tabs' state in Redis: $REDIS_URL, else a redis-server started here",
    )
    parser.add_argument(
        "--stripe-local",
        action="store_true",
        default=os.environ.get("STRIPE_LOCAL") == "1",
        help="pay through the Stripe path (the SDK, webhooks) against a local stateful "
        "Stripe-compatible server started here, instead of the test provider",
    )
    state_dir_option(parser)
    args = parser.parse_args()

    stopping = threading.Event()
    up = threading.Event()

    def on_signal(*_: object) -> None:
        stopping.set()
        if not up.is_set():
            raise Interrupted("interrupted while starting")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    stack = Stack(args.state_dir.resolve(), args.port, args.web_replicas, args.stripe_local)
    exit_code = 0
    try:
        stack.start()
        up.set()
        print(stack.table(), flush=True)
        while not stopping.wait(0.5):
            stack.heal()
    except Interrupted:
        pass
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr, flush=True)
        exit_code = 1
    finally:
        print("stack: stopping ...", flush=True)
        stack.stop()
        print("stack: stopped", flush=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()

"""The NATS permissions of infra/k8s/nats-depl.yaml, on a real nats-server started with
that very configuration: every service runs the whole buy path as its own user, and no
user can publish another service's events."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nats
import pytest
from k8s.manifest_nats import USERS, PermissionedNats, manifest, nats_conf
from nats.js.errors import NotFoundError

from auth.core.config import AuthSettings
from auth.main import create_auth_app
from common.events import STREAM_NAME, TICKETING_STREAM
from common.events.contracts import ticketing_stream
from common.nats_client import NatsClientManager
from expiration.core.config import ExpirationSettings
from expiration.main import create_expiration_app
from harness.servers import LOOPBACK, free_port
from orders.core.config import OrdersSettings
from orders.main import create_orders_app
from payments.core.config import PaymentsSettings
from payments.main import create_payments_app
from testkit.http import app_client
from testkit.settings import settings_for
from testkit.waiting import eventually
from tickets.core.config import TicketsSettings
from tickets.main import create_tickets_app

ROOT = Path.cwd()
OWN_SUBJECTS = {  # the buy saga's decisions too: only orders completes, only payments authorizes
    "auth": ("session.revoked",),
    "tickets": ("ticket.created",),
    "orders": ("order.created", "order.completed"),
    "expiration": ("expiration.complete",),
    "payments": ("payment.created", "payment.authorized"),
}


class ManifestClusterNode(PermissionedNats):
    """A node of the manifest's StatefulSet: its config with the cluster block, and its
    container's --routes, the pods' names (nats-N.nats-cluster) made loopback ports."""

    def __init__(
        self,
        workdir: Path,
        pod: str,
        cluster_ports: dict[str, int],
        passwords: dict[str, str],
        route_password: str,
    ) -> None:
        super().__init__(workdir, pod, passwords)
        self.cluster_ports = cluster_ports
        self.env["NATS_ROUTE_PASSWORD"] = route_password

    def conf(self) -> str:
        return nats_conf(self.workdir / "jetstream", self.cluster_ports[self.env["POD_NAME"]])

    def argv(self) -> list[str]:
        [container] = manifest("StatefulSet", "nats")["spec"]["template"]["spec"]["containers"]
        routes = container["args"][container["args"].index("--routes") + 1]
        routes = routes.replace("$(NATS_ROUTE_PASSWORD)", self.env["NATS_ROUTE_PASSWORD"])
        for pod, port in self.cluster_ports.items():
            routes = routes.replace(f"{pod}.nats-cluster:6222", f"{LOOPBACK}:{port}")
        return [*super().argv(), "--routes", routes]


@pytest.fixture
def permissioned_nats(tmp_path) -> Any:
    server = PermissionedNats(tmp_path / "nats")
    with server:  # started (once) and stopped
        yield server


@pytest.fixture
async def as_user(permissioned_nats) -> AsyncIterator[Any]:
    connections: list[Any] = []

    async def connect(user: str) -> Any:
        errors: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        client = await nats.connect(permissioned_nats.url_for(user), error_cb=on_error)
        client.permission_errors = errors
        connections.append(client)
        return client

    yield connect
    for client in connections:
        await client.close()


async def test_the_buy_path_runs_with_each_service_as_its_own_user(
    permissioned_nats, mongo_server, clean_db
):
    def on(user: str) -> Any:
        return SimpleNamespace(url=permissioned_nats.url_for(user))

    fast = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}
    async with AsyncExitStack() as stack:
        apps = {}
        for name, create, cls, extra in (
            ("auth", create_auth_app, AuthSettings, fast),
            ("tickets", create_tickets_app, TicketsSettings, {}),
            ("orders", create_orders_app, OrdersSettings, {}),
            ("payments", create_payments_app, PaymentsSettings, {}),
        ):
            settings = settings_for(cls, mongo_server, on(name), **extra)
            app = create(settings, database=f"{clean_db.name}_{name}")  # type: ignore[operator]
            apps[name] = await stack.enter_async_context(app_client(app))
        expiration = ExpirationSettings(nats_url=on("expiration").url, publish_timeout=2.0)
        await stack.enter_async_context(app_client(create_expiration_app(expiration)))
        auth, tickets, orders, payments = (
            apps[n] for n in ("auth", "tickets", "orders", "payments")
        )

        seller = (
            await auth.post("/api/users/signup", json={"email": "s@test.com", "password": "secret"})
        ).cookies
        buyer = (
            await auth.post("/api/users/signup", json={"email": "b@test.com", "password": "secret"})
        ).cookies
        ticket = (
            await tickets.post("/api/tickets", json={"title": "Gig", "price": 25}, cookies=seller)
        ).json()

        placed: list[Any] = []

        async def ordered() -> bool:  # orders heard ticket.created from tickets
            response = await orders.post(
                "/api/orders", json={"ticketId": ticket["id"]}, cookies=buyer
            )
            placed[:] = [response]
            return response.status_code == 201

        await eventually(ordered)
        order = placed[0].json()

        async def reserved() -> bool:  # tickets heard order.created from orders
            current = await tickets.get(f"/api/tickets/{ticket['id']}")
            return current.json().get("orderId") == order["id"]

        await eventually(reserved)

        # expiration scheduled the order's expiry on the stream, as its own user
        watcher = await nats.connect(permissioned_nats.url_for("expiration"))
        stack.push_async_callback(watcher.close)

        async def scheduled() -> bool:
            try:
                schedule = await watcher.jetstream().get_last_msg(
                    STREAM_NAME, f"expiration.schedule.{order['id']}"
                )
            except NotFoundError:
                return False
            return schedule.headers["Nats-Schedule-Target"] == "expiration.complete"

        await eventually(scheduled)

        async def paid() -> bool:  # payments heard order.created too
            response = await payments.post(
                "/api/payments", json={"orderId": order["id"], "token": "tok_visa"}, cookies=buyer
            )
            return response.status_code == 201

        await eventually(paid)

        async def complete() -> bool:  # orders heard payment.authorized from payments
            response = await orders.get(f"/api/orders/{order['id']}", cookies=buyer)
            return response.json()["status"] == "complete"

        await eventually(complete)

        async def captured() -> bool:  # payments heard order.completed and captured
            try:
                message = await watcher.jetstream().get_last_msg(STREAM_NAME, "payment.created")
            except NotFoundError:
                return False
            return json.loads(message.data)["orderId"] == order["id"]

        await eventually(captured)
        # expiration heard order.completed and purged the schedule (its purge right)
        await eventually(lambda: _not(scheduled()))
        # and a sign-out reaches tickets through auth's session.revoked
        assert (await auth.post("/api/users/signout", cookies=seller)).status_code == 200

        async def refused() -> bool:
            response = await tickets.post(
                "/api/tickets", json={"title": "x", "price": 1}, cookies=seller
            )
            return response.status_code == 401

        await eventually(refused)


@pytest.mark.parametrize("user", USERS)
async def test_no_service_can_publish_another_services_events(user, as_user, permissioned_nats):
    client = await as_user(user)
    js = client.jetstream()
    await js.add_stream(TICKETING_STREAM)  # any service may create the stream
    forged = [s for other, own in OWN_SUBJECTS.items() if other != user for s in own]
    for subject in forged:
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await js.publish(subject, b"{}", timeout=1)
    await asyncio.sleep(0.1)
    assert any(
        "permissions violation for publish" in str(e).lower() for e in client.permission_errors
    )
    # nothing forged reached the stream
    for subject in forged:
        with pytest.raises(NotFoundError):
            await js.get_last_msg(STREAM_NAME, subject)


async def test_a_wrong_password_or_unknown_user_cannot_connect(permissioned_nats):
    for url in (
        permissioned_nats.url_for("tickets", password="guess"),
        f"nats://{LOOPBACK}:{permissioned_nats.port}",  # anonymous
    ):
        with pytest.raises(Exception, match="[Aa]uthorization"):
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)


async def test_the_manifests_nats_cluster_forms_replicates_the_stream_and_refuses_strangers(
    tmp_path,
):
    """Three nodes from the StatefulSet's config and --routes (the pods' names made
    loopback ports): they form one cluster, a service's client makes the stream with 3
    replicas on it as its own user, a node lost leaves it writable; and a node without
    the route password cannot join."""
    pods = [f"nats-{n}" for n in range(manifest("StatefulSet", "nats")["spec"]["replicas"])]
    ports = {pod: free_port() for pod in pods}
    passwords = {user: secrets.token_hex(16) for user in USERS}
    route_password = secrets.token_hex(16)
    nodes = [
        ManifestClusterNode(tmp_path / pod, pod, ports, passwords, route_password) for pod in pods
    ]
    stranger = ManifestClusterNode(
        tmp_path / "stranger", "nats-0", ports, passwords, "not-the-password"
    )
    stranger.cluster_ports = {**ports, "nats-0": free_port()}  # its own port, our routes
    manager = NatsClientManager(ticketing_stream(replicas=len(pods)))
    try:
        for node in nodes:
            node.start()
        urls = ",".join(node.url_for("tickets") for node in nodes)
        await manager.connect(urls, "tickets-0")
        info = await manager.ensure_stream()  # waits out the first election
        assert info.config.num_replicas == 3
        assert info.cluster is not None
        assert {info.cluster.leader, *(peer.name for peer in info.cluster.replicas or [])} == set(
            pods
        )
        ack = await manager.jetstream.publish("ticket.created", b"{}")
        assert ack.stream == STREAM_NAME

        leader = next(node for node in nodes if node.env["POD_NAME"] == info.cluster.leader)
        leader.kill()

        async def published() -> bool:  # once the other two have elected a leader
            try:
                await manager.jetstream.publish("ticket.created", b"{}", timeout=1)
            except (nats.errors.Error, TimeoutError):
                return False
            return True

        await eventually(published, within=60)

        stranger.start()
        await eventually(lambda: "Authorization Violation" in stranger.log_path.read_text())
    finally:
        await manager.drain()
        stranger.stop()
        for node in nodes:
            node.stop()


async def _not(condition: Any) -> bool:
    return not await condition

